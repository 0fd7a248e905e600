"""A SIGTERM handler installed after discovery is seen: SigCgt re-read while sampling, the
changes recorded, read back, and what the analysis makes of them (issue 13 §3)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import pytest
from helpers import assert_recording_lines_valid

from dora_doctor.analysis.diagnose import report_from_recording
from dora_doctor.analysis.findings import Cause, NodeFinding, Outcome
from dora_doctor.analysis.timeline import NodeEnd, build_shutdown
from dora_doctor.analysis.verdict import catches_sigterm
from dora_doctor.capture.sigcgt import SigCgtTracker
from dora_doctor.capture.threadcpu import CpuMeter
from dora_doctor.dora.discover import SIGTERM_BIT
from dora_doctor.dora.discover import catches_sigterm as catches_at_discovery
from dora_doctor.dora.discover import sigcgt_mask as read_mask
from dora_doctor.model import (
    SIGTERM_CAUGHT,
    SIGTERM_NOT_CAUGHT,
    CpuSegment,
    Dataflow,
    NodeProcess,
    ProcessEvent,
)
from dora_doctor.recording.codec import make_header
from dora_doctor.recording.model import Recording
from dora_doctor.recording.reader import read_recording
from dora_doctor.recording.writer import RecordingWriter

linux = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
ROOT = Path(__file__).resolve().parent.parent

# installs its SIGTERM handler when told, then puts the default back when told again
LATE_HANDLER = (
    "import signal, sys\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline(); signal.signal(signal.SIGTERM, lambda *a: None)\n"
    "print('caught', flush=True)\n"
    "sys.stdin.readline(); signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
    "print('default', flush=True)\n"
    "sys.stdin.readline()\n"
)


@pytest.fixture
def late_handler() -> Iterator["subprocess.Popen[str]"]:
    proc = subprocess.Popen(
        [sys.executable, "-c", LATE_HANDLER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _tell(proc: "subprocess.Popen[str]", expect: str) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == expect


def _next_change(out: "queue.Queue[Any]", timeout: float = 10.0) -> ProcessEvent:
    """The meter's next SigCgt record (CPU windows come in between); generous for a loaded
    machine: the meter polls every 20 ms here, the wait ends at the first record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = out.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(item, ProcessEvent):
            return item
        assert isinstance(item, CpuSegment)
    raise AssertionError("no SigCgt change recorded")


@linux
def test_a_handler_installed_after_discovery_is_recorded_when_it_changes(
    late_handler: "subprocess.Popen[str]", tmp_path: Path
) -> None:
    pid = late_handler.pid
    node = NodeProcess("late", "u-1", pid, pid, True)
    node.catches_sigterm = catches_at_discovery(pid)
    assert node.catches_sigterm is False  # what discovery sees: no handler yet
    out: "queue.Queue[Any]" = queue.Queue()
    meter = CpuMeter([node], out, poll_s=0.02)
    meter.start()
    try:
        time.sleep(0.2)  # several polls of an unchanged process: nothing to record
        assert all(isinstance(out.get_nowait(), CpuSegment) for _ in range(out.qsize()))
        _tell(late_handler, "caught")
        caught = _next_change(out)
        _tell(late_handler, "default")
        back = _next_change(out)
    finally:
        meter.stop()
    assert (caught.kind, back.kind) == (SIGTERM_CAUGHT, SIGTERM_NOT_CAUGHT)
    assert (caught.node, caught.pid) == ("late", pid) and caught.time < back.time
    mask = int((caught.detail or "").split()[-1], 16)
    assert mask & SIGTERM_BIT and not int((back.detail or "").split()[-1], 16) & SIGTERM_BIT

    # written, validated against the schema and read back as the analysis sees it
    path = tmp_path / "late.ddrec"
    dataflow = Dataflow("u-1", "late", nodes=[node])
    with RecordingWriter(path, make_header([dataflow], "1.1.0", {"rate": 100})) as writer:
        writer.write(caught)
        writer.write(back)
    assert_recording_lines_valid(path.read_text())
    recording = read_recording(path)
    assert [e.kind for e in recording.events] == [SIGTERM_CAUGHT, SIGTERM_NOT_CAUGHT]
    end = build_shutdown(recording, recording.dataflows[0]).ends[0]
    assert end.sigcgt == [
        (None, False),
        (pytest.approx(caught.time), True),
        (pytest.approx(back.time), False),
    ]
    node = recording.dataflows[0].nodes[0]
    assert catches_sigterm(node, end, caught.time - 1.0, caught.time - 0.5) is False
    assert catches_sigterm(node, end, caught.time - 1.0, back.time + 1.0) is True
    assert catches_sigterm(node, end, back.time + 0.1, back.time + 1.0) is False


@linux
def test_sigcgt_of_a_live_and_a_gone_process() -> None:
    mine = read_mask(os.getpid())
    assert mine is not None and bool(mine & SIGTERM_BIT) is catches_at_discovery(os.getpid())
    assert read_mask(2**22 + 12345) is None
    gone = NodeProcess("gone", "u-1", 2**22 + 12345, 2**22 + 12345, True, catches_sigterm=True)
    assert SigCgtTracker([gone]).poll(gone) is None  # a gone process says nothing
    unread = NodeProcess("me", "u-1", os.getpid(), os.getpid(), True)  # discovery: unread
    tracker = SigCgtTracker([unread])
    first = tracker.poll(unread, 5.0)
    assert first is not None and first.time == 5.0  # the first answer is news
    assert tracker.poll(unread) is None  # and only once


def _end(states: List[Tuple[Optional[float], bool]], header: Optional[bool]) -> NodeEnd:
    node = NodeProcess("n", "d", 1, 1, True, catches_sigterm=header)
    return NodeEnd(node, sigcgt=states)


def test_catches_sigterm_over_a_window() -> None:
    node = NodeProcess("n", "d", 1, 1, True)
    # discovery only
    assert catches_sigterm(node, _end([(None, True)], True), 10.0, 12.0) is True
    assert catches_sigterm(node, _end([(None, False)], False), 10.0, 12.0) is False
    assert catches_sigterm(node, _end([], None), 10.0, 12.0) is None
    # installed during the window; reset by the exiting interpreter just before the end
    states = [(None, False), (11.0, True), (11.9, False)]
    assert catches_sigterm(node, _end(states, False), 10.0, 12.0) is True
    assert catches_sigterm(node, _end(states, False), 12.0, 13.0) is False
    assert catches_sigterm(node, _end(states, False), 9.0, 10.0) is False
    # unread at discovery: what came before the first reading is not known
    assert catches_sigterm(node, _end([(11.0, False)], None), 10.0, 12.0) is None
    assert catches_sigterm(node, _end([(11.0, True)], None), 10.0, 12.0) is True
    assert catches_sigterm(node, _end([(9.0, False)], None), 10.0, 12.0) is False


# --- what the analysis makes of it, on real recordings ----------------------------------

CORPUS = ROOT / "tests" / "fixtures" / "recordings" / "corpus"
REC = ROOT / "tests" / "fixtures" / "recordings"


def _finding(recording: Recording, node_id: str) -> NodeFinding:
    report = report_from_recording(recording)
    return {n.id: n for df in report.dataflows for n in df.nodes}[node_id]


def test_an_exit_through_a_sigterm_handler_at_the_grace_is_terminated_not_clean() -> None:
    """sigterm_quick (real run, dora 1.1.0, grace 2 s): no failure line, the coordinator's
    dataflow end, exit 2.15 s after the stop; SigCgt has SIGTERM at discovery and the exiting
    interpreter's reset is recorded; MainThread never left poll_jobs."""
    found = _finding(read_recording(CORPUS / "sigterm_quick.ddrec"), "quick")
    assert (found.outcome, found.cause) == (Outcome.TERMINATED, Cause.STUCK)
    assert "SigCgt of /proc/PID/status" in found.rests_on
    assert "dora's dataflow end line, no failure line for the node" not in found.rests_on
    text = " ".join(found.evidence)
    assert "through its own SIGTERM handler" in text and "exited on its own" not in text
    assert "cleanup never ran" not in text  # its handler did run
    assert found.stop_duration_s is not None and 2.0 <= found.stop_duration_s < 3.0


def test_without_sigcgt_the_same_exit_is_unknown_and_no_handler_is_claimed() -> None:
    recording = read_recording(CORPUS / "sigterm_quick.ddrec")
    recording.dataflows[0].nodes[0].catches_sigterm = None  # a recording from before SigCgt
    recording.events = [e for e in recording.events if e.kind == "exited"]
    found = _finding(recording, "quick")
    assert found.outcome == Outcome.UNKNOWN
    assert "SigCgt of /proc/PID/status" not in found.rests_on
    text = " ".join(found.evidence)
    assert "was not read (SigCgt)" in text and "through its own SIGTERM handler" not in text


def test_without_a_handler_dora_s_clean_end_stands() -> None:
    recording = read_recording(CORPUS / "sigterm_quick.ddrec")
    recording.dataflows[0].nodes[0].catches_sigterm = False
    recording.events = [e for e in recording.events if e.kind == "exited"]
    assert _finding(recording, "quick").outcome == Outcome.CLEAN


def test_a_node_that_reacted_and_ended_at_the_sigterm_point_is_unknown() -> None:
    """wb-end (real run): talker left its event wait 0.56 s after the stop and exited at
    1.12 s. Told that the grace was 1.1 s and that it catches SIGTERM, its own cleanup ending
    and a handler's exit at the deadline look the same: unknown, with that reason."""
    recording = read_recording(REC / "wb-end.ddrec")
    for event in recording.logs:
        if event.kind == "stop-request" and event.source == "dora-doctor":
            event.seconds = 1.1
    for node in recording.dataflows[0].nodes:
        node.catches_sigterm = True
    talker = _finding(recording, "talker")
    assert talker.outcome == Outcome.UNKNOWN
    assert any("left its event loop after STOP" in e for e in talker.evidence)
    # listener's samples end at STOP (0.57 s), long before the deadline: not evidence either way
    listener = _finding(recording, "listener")
    assert listener.outcome == Outcome.UNKNOWN
    assert any("too few samples up to the deadline" in e for e in listener.evidence)


def test_a_clean_exit_before_the_grace_is_not_touched() -> None:
    recording = read_recording(REC / "wb-end.ddrec")
    for node in recording.dataflows[0].nodes:
        node.catches_sigterm = True  # a handler changes nothing about an exit long before it
    assert {_finding(recording, n).outcome for n in ("talker", "listener")} == {Outcome.CLEAN}
