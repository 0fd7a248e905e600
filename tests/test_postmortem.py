"""Post-mortems of real dora logs (fixtures captured from dora-rs-cli 1.1.0 and 0.3.13)."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Dict, List

import pytest
from helpers import run_doctor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_doctor.analysis.findings import NodeFinding
from dora_doctor.analysis.postmortem import Postmortem, postmortem
from dora_doctor.logs import logfiles, parse, patterns
from dora_doctor.recording.reader import read_recording

FIX = Path(__file__).parent / "fixtures"
V110 = FIX / "dora-1.1.0"
V0313 = FIX / "dora-0.3.13"


def by_node(result: Postmortem) -> Dict[str, List[NodeFinding]]:
    found: Dict[str, List[NodeFinding]] = {}
    for dataflow in result.report.dataflows:
        for node in dataflow.nodes:
            found.setdefault(node.id, []).append(node)
    return found


def test_dora_1_1_0_detached_stops_name_every_terminated_and_killed_node() -> None:
    result = postmortem([str(V110 / "detached-stop-grace-2s")])
    nodes = by_node(result)
    for name in ("crunch", "stubborn", "saver", "deaf"):
        (node,) = nodes[name]
        assert node.outcome == "terminated", name
        assert node.stop_duration_s == pytest.approx(2.01, abs=0.02)
        assert any("grace 2 s" in e for e in node.evidence)
    (sleeper,) = nodes["sleeper"]
    assert sleeper.outcome == "killed" and sleeper.stop_duration_s == pytest.approx(3.01, abs=0.02)
    assert any("grace 2 s (dora's kill line (3 s = 1.5 × grace))" in e for e in sleeper.evidence)
    for name in ("talker", "listener"):  # clean nodes: no false kills
        assert [n.outcome for n in nodes[name]] == ["clean"]
    assert result.summary.stops == 6
    assert result.summary.terminated == {"crunch": 1, "stubborn": 1, "saver": 1, "deaf": 1}
    assert result.summary.killed == {"sleeper": 1}
    # its daemon reaches the coordinator over WebSocket: a 1.x log, not a 0.4.x one
    assert result.report.dora_version == "≥1.0"


def test_dora_0_3_13_text_logs_give_kills_at_the_grace() -> None:
    result = postmortem([str(V0313 / "detached-stop-grace-2s")])
    nodes = by_node(result)
    for name in ("crunch", "stubborn", "saver", "deaf", "sleeper"):
        (node,) = nodes[name]
        assert node.outcome == "killed", name
        assert node.stop_duration_s == pytest.approx(2.0, abs=0.01)
        assert any("grace 2 s (dora's kill line (2 s = 1 × grace))" in e for e in node.evidence)
    assert [n.outcome for n in nodes["talker"]] == ["clean"]
    assert result.report.dora_version == "0.3.x"
    assert result.summary.killed == {
        n: 1 for n in ("crunch", "stubborn", "saver", "deaf", "sleeper")
    }


@pytest.mark.parametrize("variant", ["", ".color"])
def test_dora_run_output_infers_the_grace_from_the_sigterm(variant: str) -> None:
    path = V110 / "run-stop-after-3s" / f"run-gil_contention{variant}.stdout.txt"
    (crunch,) = by_node(postmortem([str(path)]))["crunch"]
    assert crunch.outcome == "terminated"
    assert crunch.stop_duration_s == pytest.approx(10.005, abs=0.01)
    assert any(
        "grace 10 s (time of the first SIGTERM after the stop)" in e for e in crunch.evidence
    )


def test_dora_run_sigkill_after_a_sigterm_handler() -> None:
    path = V110 / "run-stop-after-3s" / "run-sigterm_handler.stdout.txt"
    (sleeper,) = by_node(postmortem([str(path)]))["sleeper"]
    assert sleeper.outcome == "killed" and sleeper.stop_duration_s == pytest.approx(15.0, abs=0.05)


def test_gzip_stdin_and_journald_prefixes(tmp_path: Path) -> None:
    daemon = (V110 / "detached-stop-grace-2s" / "dora-daemon.txt").read_bytes()
    coordinator = (V110 / "detached-stop-grace-2s" / "dora-coordinator.txt").read_text()
    packed = tmp_path / "daemon.log.1"
    packed.write_bytes(gzip.compress(daemon))  # compressed, and named as logrotate does
    journal = "".join(
        f"Nov 25 14:04:{i % 60:02d} robot dora-coordinator[812]: {line}\n"
        for i, line in enumerate(coordinator.splitlines())
    )
    result = run_doctor("postmortem", str(packed), "-", "--json", timeout=60, stdin=journal)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    outcomes = {
        n["id"]: n["outcome"] for d in data["dataflows"] for n in d["nodes"] if n["outcome"]
    }
    assert outcomes["crunch"] == "terminated" and outcomes["sleeper"] == "killed"
    assert data["postmortem"]["summary"]["stops"] == 6
    assert data["postmortem"]["inputs"]["files"] == 2


def test_bad_inputs_are_one_line_each_and_never_fatal(tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "binary.log").write_bytes(bytes(range(256)) * 1000)
    (tmp_path / "huge.log").write_bytes(
        b"x" * (300 << 10)
        + b" not stopping within the 2s grace period\n"  # anchor past the cut
        + b"z" * (200 << 10)
        + b"\n"  # long, but nothing dora-doctor looks for: not "cut"
        + b"node exited with error: Signal(15) "
        + b"y" * (9 << 20)  # at the end, no newline
    )
    (tmp_path / "latin1.log").write_bytes(
        "caf\xe9 node exited with error: Signal(15)\n".encode("latin-1")
    )
    (tmp_path / "nologs").mkdir()
    result = run_doctor(
        "postmortem", str(tmp_path), str(tmp_path / "nologs"), "--json", timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("dora-doctor: warning:")]
    assert len(warnings) == 2, warnings
    assert any("nologs: no log files" in w for w in warnings)
    assert any("binary.log: binary data, not a log: skipped" in w for w in warnings)
    inputs = json.loads(result.stdout)["postmortem"]["inputs"]
    assert inputs["files"] == 3 and inputs["cut_lines"] == 2  # one in the middle, one at the end
    assert inputs["lines"] == 1 + 3 + 0  # latin1, huge, empty (binary.log is not read)
    assert "Traceback" not in result.stderr


def test_a_missing_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "real.log").write_text("node exited with error: Signal(15)\n")
    result = run_doctor("postmortem", str(tmp_path / "real.log"), str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"dora-doctor: error: {tmp_path / 'nope'}: no such file or directory"
    ]


def test_nothing_readable_is_a_usage_error_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "nologs").mkdir()
    (tmp_path / "noise.log").write_bytes(bytes(range(256)) * 100)
    result = run_doctor("postmortem", str(tmp_path / "nologs"), str(tmp_path / "noise.log"))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("dora-doctor: error: nothing to read: ")
    assert "no log files in this directory" in line and "binary data" in line


def test_an_empty_input_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_bytes(b"")
    result = run_doctor("postmortem", str(tmp_path / "empty.log"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "dora-doctor: the input is empty (1 file(s), 0 bytes): nothing to report"
    ]
    from_stdin = run_doctor("postmortem", "-", "--json", stdin="")
    assert from_stdin.returncode == 0 and len(from_stdin.stderr.splitlines()) == 1
    assert json.loads(from_stdin.stdout)["postmortem"]["inputs"]["bytes"] == 0


def test_recording_adds_the_gil_holder_at_the_kill() -> None:
    recording = read_recording(FIX / "recordings" / "gil.ddrec")
    recording.logs = []  # only the post-mortem's logs say how it ended
    result = postmortem([str(FIX / "recordings" / "gil-logs")], recording)
    (crunch,) = by_node(result)["crunch"]
    assert crunch.outcome == "terminated" and crunch.cause == "gil-contention"
    assert any(
        e.startswith("In its last second before dora ended it, cruncher held the GIL")
        and "crunch_numbers" in e
        for e in crunch.evidence
    )


REAL_EVENT_LINES = [
    line
    for path in sorted((V110 / "detached-stop-grace-2s").glob("dora-*.txt"))
    for line in path.read_text().splitlines()
    if parse.parse_line(line) is not None
]


def _expected_from_json(line: str) -> "tuple[str, str, str]":
    """The oracle: (kind, node, dataflow) read straight from a dora 1.1.0 JSON line with
    json.loads and the message's own words, not with the envelope or pattern code under test.
    """
    record = json.loads(line)
    message = record["fields"]["message"]
    span = record.get("span", {})
    node = span.get("node_id", "")
    dataflow = span.get("dataflow_id", "")
    if message.startswith("successfully send stop dataflow `"):
        return ("stop-request", node, message.split("`")[1])
    if message.startswith("node exited with error: "):
        return ("node-exit", node, dataflow)
    if " was killed due to not stopping within the " in message:
        # the kill line names only the node: dora's exit line of that node names the dataflow
        node = message.split(" ")[0]
        return ("grace-kill", node, dataflow or _EXIT_DATAFLOW[node])
    if message.startswith("removed machine id: "):
        return ("dataflow-end", node, message.rsplit(" ", 1)[1])
    raise AssertionError(f"the oracle does not know this fixture line: {message}")


_EXIT_DATAFLOW = {
    json.loads(line)["span"]["node_id"]: json.loads(line)["span"]["dataflow_id"]
    for line in REAL_EVENT_LINES
    if "node exited with error" in line
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    garbage=st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.text(max_size=200).map(str.encode),
            st.just(b"\x1f\x8b"),  # gzip's magic bytes, as the first line: still plain text
            st.just(b"\x1f\x8b\x08\x00"),
        ),
        max_size=30,
    ),
    seed=st.randoms(use_true_random=False),
)
def test_mixed_real_lines_and_garbage_never_crash_and_lose_no_event(
    tmp_path_factory: pytest.TempPathFactory, garbage: List[bytes], seed: "object"
) -> None:
    lines = [ln.encode() for ln in REAL_EVENT_LINES] + [
        g.replace(b"\n", b" ").replace(b"\r", b" ") for g in garbage
    ]
    seed.shuffle(lines)  # type: ignore[attr-defined]
    path = tmp_path_factory.mktemp("mixed") / "mixed.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = postmortem([str(path)])
    assert not result.scan.stats.problems
    found = Counter(
        (e.kind, e.node or "", e.dataflow or "")
        for e in result.scan.events
        if e.source == "other" and e.pattern and e.text in _REAL_MESSAGES
    )
    assert found == Counter(_expected_from_json(line) for line in REAL_EVENT_LINES)
    assert result.scan.events_read == len(result.scan.events)  # nothing left out


_REAL_MESSAGES = {json.loads(line)["fields"]["message"] for line in REAL_EVENT_LINES}


def test_postmortem_html_draws_the_recorded_lanes(tmp_path: Path) -> None:
    page = tmp_path / "pm.html"
    result = run_doctor(
        "postmortem", str(FIX / "recordings" / "gil-logs"),
        "--recording", str(FIX / "recordings" / "gil.ddrec"), "--html", str(page), timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = page.read_text()
    assert "<g class='lane' data-node='crunch' data-thread='cruncher'>" in text
    assert "data-marker='stop'" in text and "data-marker='exit'" in text
    again = run_doctor("postmortem", str(FIX / "recordings" / "gil-logs"), "--html", str(page))
    assert again.returncode == 2 and "already exists" in again.stderr


def scan_both_ways(path: Path) -> "tuple[object, object]":
    """candidate_lines through ripgrep and through the chunked scan: lines and counts."""
    from dora_doctor.logs.logfiles import ReadStats, candidate_lines, classify

    results = []
    for fast in (True, False):
        stats = ReadStats()
        lines = list(candidate_lines(classify(path), stats, patterns.CANDIDATE_ANCHORS, fast=fast))
        results.append((lines, stats.lines, stats.cut_lines, stats.bytes, stats.problems))
    return results[0], results[1]


needs_rg = pytest.mark.skipif(
    logfiles.find_ripgrep() is None,
    reason="ripgrep is not installed (a dependency of dora-doctor)",
)


@needs_rg
@pytest.mark.parametrize(
    "path",
    sorted(p for p in FIX.rglob("*") if p.is_file() and p.suffix in (".txt", ".jsonl", ".log")),
    ids=lambda p: str(p.relative_to(FIX)),
)
def test_ripgrep_and_the_chunked_scan_agree_on_every_fixture(path: Path) -> None:
    fast, slow = scan_both_ways(path)
    assert fast == slow


@needs_rg
def test_ripgrep_and_the_chunked_scan_agree_on_huge_lines_and_odd_ends(tmp_path: Path) -> None:
    cases = {
        "huge": b"x" * (300 << 10)
        + b" stop\n"
        + b"z" * (200 << 10)
        + b"\nexit "
        + b"y" * (9 << 20),
        "no-newline-at-end": b"a\nnode exited with error: Signal(15)",
        "hit-then-long-tail": b"stop here\n" + b"q\n" * 100_000,
        "nothing": b"plain\nlines\n",
        "empty": b"",
        "crlf": b"talker finished successfully\r\nx\r\n",
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.log"
        path.write_bytes(data)
        fast, slow = scan_both_ways(path)
        assert fast == slow, name


@needs_rg
@settings(max_examples=40, deadline=None)
@given(
    chunks=st.lists(
        st.one_of(st.binary(max_size=300), st.sampled_from(REAL_EVENT_LINES).map(str.encode)),
        max_size=40,
    )
)
def test_ripgrep_and_the_chunked_scan_agree_on_garbage(chunks: List[bytes]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mixed.log"
        path.write_bytes(b"\n".join(chunks))
        fast, slow = scan_both_ways(path)
        assert fast == slow


def test_a_node_known_only_from_logs_is_not_called_not_python() -> None:
    """From dora's logs alone nothing says whether a node runs Python: a new user's
    SIGTERMed Python node showed "not Python" in the cause column. Only discovery says so."""
    result = run_doctor("postmortem", str(V110 / "detached-stop-grace-2s"), "--no-history")
    assert result.returncode == 0, result.stderr
    assert "terminated" in result.stdout
    assert "not Python" not in result.stdout


def test_an_unknown_end_is_said_once_with_what_it_means_for_the_grace() -> None:
    """dora 0.4.1's logs: the clean nodes' ends are not known (its daemon logs no exit). The
    reason was said twice per node (the timeline's sentence and the verdict's); once now."""
    logs = FIX / "dora-0.4.1" / "detached-stop-grace-2s"
    result = postmortem([str(logs)])
    unknown = [n for df in result.report.dataflows for n in df.nodes if n.outcome == "unknown"]
    assert sorted(n.id for n in unknown) == ["listener", "talker"]
    for node in unknown:
        said = [e for e in node.evidence if "ended is unknown" in e]
        assert len(said) == 1 and "no grace value is derived from it" in said[0], node.evidence
