"""Every dora release line from its real logs and recordings, without running dora.

Fixtures: ``fixtures/dora-<version>/detached-stop-grace-2s/`` (coordinator, daemon and node logs,
``dora stop`` output, and ``strace`` of every node: the signal it really got) and
``fixtures/recordings/{gil,wb}-<version>.ddrec`` (``inspect --record --stop --grace-duration 2s``
on that version). The oracle is what strace saw, read here with its own small parser, never
dora-doctor's: an answer must equal it, or be ``unknown`` where that release leaves no evidence.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List

import pytest
from helpers import run_doctor

from dora_doctor.analysis.diagnose import report_from_recording
from dora_doctor.analysis.findings import NodeFinding
from dora_doctor.analysis.postmortem import postmortem
from dora_doctor.analysis.result import analyse
from dora_doctor.dora import versions
from dora_doctor.logs import patterns
from dora_doctor.recording.reader import read_recording
from dora_doctor.report import RenderOptions, registry, timeline_text

FIX = Path(__file__).parent / "fixtures"
REC = FIX / "recordings"
NEW = ("0.4.1", "0.5.0", "1.0.1")


def strace_outcome(folder: Path, dataflow: str, node: str) -> str:
    """How the node's main thread ended, as ``strace -f`` wrote it: the test's oracle."""
    observed = json.loads((folder / "observed.json").read_text())
    (run,) = [r for r in observed["runs"] if r["name"] == dataflow]
    pid = str(run["pids"][node])
    lines = (folder / f"strace-{dataflow}-{node}.txt").read_text().splitlines()
    last = [ln for ln in lines if ln.split()[0] == pid and "+++" in ln][-1]
    if "killed by SIGTERM" in last:
        return "terminated"
    if "killed by SIGKILL" in last:
        return "killed"
    assert "exited with 0" in last, last
    return "clean"


def by_node(folder: Path) -> Dict[str, NodeFinding]:
    result = postmortem([str(folder)])
    return {node.id: node for d in result.report.dataflows for node in d.nodes}


@pytest.mark.parametrize("version", NEW)
def test_postmortem_matches_what_strace_saw(version: str) -> None:
    """Each node's outcome is what strace saw it get, or unknown with the reason on 0.4.1,
    whose daemon logs no node exit (the clean exits of talker and listener leave no line)."""
    folder = FIX / f"dora-{version}" / "detached-stop-grace-2s"
    nodes = by_node(folder)
    line = versions.release_line(version)
    for dataflow, node in (("gc", "crunch"), ("wb", "talker"), ("wb", "listener")):
        truth = strace_outcome(folder, dataflow, node)
        found = nodes[node]
        if not line.logs_node_exits and truth == "clean":
            assert found.outcome == "unknown", found.evidence
            assert any("logs no node exit" in e for e in found.evidence), found.evidence
        else:
            assert found.outcome == truth, (node, found.evidence)
    assert strace_outcome(folder, "gc", "crunch") == "terminated"  # SIGTERM at the grace


def test_0_5_0_kill_line_after_the_exit_is_no_evidence_of_a_kill() -> None:
    """0.5.0 logged 'crunch was killed … 3s grace period' 0.99 s after its own exit line
    (Signal(15)); strace saw the SIGTERM end it. Not killed, and the reason is given."""
    nodes = by_node(FIX / "dora-0.5.0" / "detached-stop-grace-2s")
    crunch = nodes["crunch"]
    assert crunch.outcome == "terminated"
    assert crunch.stop_duration_s == pytest.approx(2.01, abs=0.02)
    rejected = [e for e in crunch.evidence if "no evidence of a kill" in e]
    assert len(rejected) == 1 and "0.99 s after the node had ended (its exit line)" in rejected[0]
    assert not any("SIGTERM handler" in e or "outlived" in e for e in crunch.evidence)
    # 0.5.0's `dora stop` exits 1 and names crunch failed: no "treating as clean" claim
    assert any("dora 0.5.x reports it as a failure" in e for e in crunch.evidence)
    assert not any("treating as clean" in e for e in crunch.evidence)


def test_0_5_0_kill_line_for_a_node_that_exited_on_its_own_is_not_a_kill() -> None:
    """mixed.yml on 0.5.0: steady exited 0 at 0.33 s (strace), yet the daemon logged
    'steady was killed …' 3 s after the stop. Nothing else in the logs speaks of steady's end,
    so the answer is unknown with the reason; never killed."""
    folder = FIX / "dora-0.5.0" / "mixed-stop-grace-2s"
    nodes = by_node(folder)
    assert strace_outcome(folder, "mx", "steady") == "clean"
    steady = nodes["steady"]
    assert steady.outcome == "unknown", steady.evidence
    assert any(
        "the only line about its end is dora 0.5.x's kill line" in e for e in steady.evidence
    )
    assert nodes["native"].outcome == strace_outcome(folder, "mx", "native") == "terminated"
    assert nodes["early"].outcome == strace_outcome(folder, "mx", "early") == "clean"


def test_0_4_1_sigterm_at_the_grace_is_never_clean() -> None:
    """0.4.1's daemon is silent about crunch; `dora stop` said '(SIGTERM)': terminated."""
    crunch = by_node(FIX / "dora-0.4.1" / "detached-stop-grace-2s")["crunch"]
    assert crunch.outcome == "terminated", crunch.evidence
    without_cli = by_node_of(
        FIX / "dora-0.4.1" / "detached-stop-grace-2s",
        ["dora-coordinator.txt", "dora-daemon.txt", "out"],
    )
    # from the daemon's and coordinator's logs alone nothing says how it ended
    assert without_cli["crunch"].outcome == "unknown", without_cli["crunch"].evidence


def by_node_of(folder: Path, names: List[str]) -> Dict[str, NodeFinding]:
    result = postmortem([str(folder / name) for name in names])
    return {node.id: node for d in result.report.dataflows for node in d.nodes}


@pytest.mark.parametrize(
    "version, label",
    [("0.4.1", "0.4.x"), ("0.5.0", "0.5.x"), ("1.0.1", "≥1.0"), ("1.1.0", "≥1.0")],
)
def test_the_release_line_is_told_from_a_daemon_log(version: str, label: str) -> None:
    daemon = FIX / f"dora-{version}" / "detached-stop-grace-2s" / "dora-daemon.txt"
    assert versions.line_from_log(daemon.read_text()[:65536]) == label
    told, real = versions.release_line(label), versions.release_line(version)
    for fact in ("sigterm_step", "sigkill_factor", "logs_node_exits", "kill_line_trustworthy"):
        assert getattr(told, fact) == getattr(real, fact), fact
    assert postmortem([str(daemon.parent)]).report.dora_version == label


def test_log_marks_and_rows_are_consistent() -> None:
    for label, pattern, example in versions.LOG_MARKS:
        assert pattern.search(example), label
        assert versions.line_from_log(example) == label
    for row in versions.RELEASE_LINES:
        assert versions.release_line(row.tested) is row
        assert versions.release_line(row.series) is row
    assert versions.release_line(None) is versions.RELEASE_LINES[-1]


def test_the_cli_sigterm_verdict_of_0_4_1_is_a_termination() -> None:
    """A real line of 0.4.1's `dora stop` (stop-gc.stderr.txt): the table reads SIGTERM."""
    text = (FIX / "dora-0.4.1" / "detached-stop-grace-2s" / "stop-gc.stderr.txt").read_text()
    (line,) = [ln for ln in text.splitlines() if "Node `crunch` failed" in ln]
    event = patterns.event_from_message(line, None)
    assert event is not None and (event.node, event.signal) == ("crunch", 15)


# --- recordings made with `inspect --record --stop --grace-duration 2s` on each line -----


RECORDED = ("0.3.13", "0.4.1", "0.5.0", "1.0.1")


@pytest.mark.parametrize("version", RECORDED)
def test_recordings_of_every_line_give_the_outcome_of_its_ladder(version: str) -> None:
    """crunch (no SIGTERM handler, never reads STOP) ends at dora's first signal: SIGKILL at
    the grace on 0.3.x, SIGTERM there later; talker and listener end clean before it."""
    gil = read_recording(REC / f"gil-{version}.ddrec")
    assert gil.dora_version == version
    (crunch,) = report_from_recording(gil).dataflows[0].nodes
    line = versions.release_line(version)
    assert crunch.outcome == ("terminated" if line.sigterm_step else "killed"), crunch.evidence
    assert crunch.cause == "gil-contention"
    assert crunch.gil is not None and crunch.gil.holders[0].thread == "cruncher"
    wb = report_from_recording(read_recording(REC / f"wb-{version}.ddrec")).dataflows[0]
    assert {n.id: n.outcome for n in wb.nodes} == {"talker": "clean", "listener": "clean"}
    assert wb.suggestion is not None
    assert wb.suggestion.command.startswith(
        "dora stop --name wb " if line.stop_name_needs_flag else "dora stop wb "
    )


@pytest.mark.parametrize("version", RECORDED)
def test_every_renderer_draws_the_ladder_of_the_recordings_line(version: str) -> None:
    recording = read_recording(REC / f"gil-{version}.ddrec")
    analysis = analyse(recording)
    options = RenderOptions()
    line = versions.release_line(version)
    marks = {
        e["name"] for e in json.loads(registry.PERFETTO.render(analysis, options))["traceEvents"]
    }
    if line.sigterm_step:
        assert {"grace deadline (SIGTERM)", "SIGKILL point"} <= marks
    else:
        assert "grace deadline (SIGKILL)" in marks and "SIGKILL point" not in marks
    assert "crunch" in registry.MARKDOWN.render(analysis, options)
    page = registry.HTML.render(analysis, options)
    assert page.lower().startswith("<!doctype html>") and "crunch" in page
    header, crunch_row = timeline_text.lines(analysis, analysis.dataflows[0])[:2]
    assert header.index("S") < header.index("T")  # the stop, then the grace deadline
    assert "K" not in header  # crunch was gone before any SIGKILL point came
    assert crunch_row.startswith("crunch") and crunch_row.rstrip().endswith("X")
    result = run_doctor("report", str(REC / f"gil-{version}.ddrec"), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dora_version"] == version
    assert re.search(r"\bcrunch\b", result.stdout)


def test_0_4_1_without_dora_stops_verdict_the_exit_time_tells_the_rung() -> None:
    """gil-0.4.1.ddrec with `dora stop`'s output taken away: the daemon said nothing, so
    crunch's end comes from the exit dora-doctor saw, 2.00 s after the coordinator's STOP
    line, the 2 s grace dora-doctor gave: SIGTERM, said to be inferred. Without the grace
    dora-doctor gave, the rung cannot be told: unknown, with the reason."""
    recording = read_recording(REC / "gil-0.4.1.ddrec")
    for event in recording.logs:
        if event.kind == "stop-returned":
            event.text = ""
    (crunch,) = report_from_recording(recording).dataflows[0].nodes
    assert crunch.outcome == "terminated", crunch.evidence
    assert any("where dora sends SIGTERM (inferred" in e for e in crunch.evidence)

    for event in recording.logs:
        if event.kind == "stop-request" and event.source == "dora-doctor":
            event.seconds = None  # as if the user had stopped it: no grace known
    (crunch,) = report_from_recording(recording).dataflows[0].nodes
    assert crunch.outcome == "unknown", crunch.evidence
    assert any("logs no node exit" in e for e in crunch.evidence)
