"""The HTML report in a real browser: headless Chromium (Debian's package), as a newcomer
would open it. Every node's lanes and every marker must be in the DOM, and the page must
make no network request of its own (Chromium's own background requests, seen on an empty
page in the same run, are not the page's)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import List, Set, Tuple

import pytest

from dora_doctor.analysis.result import analyse
from dora_doctor.recording.reader import read_recording
from dora_doctor.report import RenderOptions, registry

REC = Path(__file__).parent / "fixtures" / "recordings"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND",
]  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("DORA_DOCTOR_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def open_page(page: Path, tmp: Path, *extra: str) -> "subprocess.CompletedProcess[str]":
    profile = tmp / f"profile-{page.stem}"
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def requested_hosts(netlog: Path) -> Set[str]:
    text = netlog.read_text(errors="replace")
    return set(re.findall(r'"url":"(?:https?|wss?)://([^/:"]+)', text))


# Lane states a newcomer must see, per recording with CPU windows: (thread, state) pairs.
STATES = {
    "gilcpu": [("cruncher", "held"), ("MainThread", "waiting")],
    "hasher": [("MainThread", "running"), ("MainThread", "waiting")],
}


def lane_states(dom: str) -> Set[Tuple[str, str]]:
    found = set()
    for thread, body in re.findall(r'data-thread="([^"]+)">(.*?)</g>', dom, re.S):
        found |= {(thread, state) for state in re.findall(r'<rect class="([a-z]+)"', body)}
    return found


@pytest.mark.parametrize("name", ["gil", "sl", "mx", "gilcpu", "hasher"])
def test_html_report_in_headless_chromium(name: str, tmp_path: Path) -> None:
    recording = read_recording(REC / f"{name}.ddrec")
    analysis = analyse(recording)
    report = analysis.diagnosis
    page = tmp_path / f"{name}.html"
    page.write_text(registry.HTML.render(analysis, RenderOptions()))
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", text)

    dom = open_page(page, tmp_path, "--dump-dom", f"--log-net-log={tmp_path / 'page.netlog'}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    sampled = [n.id for n in report.dataflows[0].nodes if n.python and n.samples]
    lanes = re.findall(r"<g class=\"lane\" data-node=\"([^\"]+)\"", dom.stdout)
    assert set(sampled) <= set(lanes)
    markers = set(re.findall(r'data-marker="([a-z]+)"', dom.stdout))
    expected: List[str] = ["stop", "grace", "exit"]
    if any(n.outcome == "killed" for n in report.dataflows[0].nodes):
        expected.append("kill")
    assert set(expected) <= markers, markers
    for node in report.dataflows[0].nodes:
        assert f'data-node="{node.id}"' in dom.stdout  # a card per node
    assert set(STATES.get(name, [])) <= lane_states(dom.stdout), lane_states(dom.stdout)

    empty = tmp_path / "empty.html"
    empty.write_text("<!doctype html><title>empty</title>")
    base = open_page(empty, tmp_path, "--dump-dom", f"--log-net-log={tmp_path / 'empty.netlog'}")
    assert base.returncode == 0
    ours = requested_hosts(tmp_path / "page.netlog") - requested_hosts(tmp_path / "empty.netlog")
    assert ours == set(), f"the page requested {ours}"

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    taken = open_page(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,900")
    assert taken.returncode == 0 and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # kept as an artefact (.gitignore)
