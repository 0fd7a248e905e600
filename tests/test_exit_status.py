"""How a process that is not our child ended: its wait status, read from /proc while it is a
zombie (dora_doctor.dora.discover.zombie_wait_status), carried in the ``exited`` record and
taken by the analysis as positive evidence. The processes here are real children left
unreaped, as dora's daemon leaves a node for the moment before its waitpid."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import List

import pytest

from dora_doctor.analysis.diagnose import report_from_recording
from dora_doctor.dora.discover import zombie_wait_status
from dora_doctor.model import (
    Dataflow,
    NodeProcess,
    ProcessEvent,
    format_exit_status,
    parse_exit_status,
)
from dora_doctor.recording.model import Recording

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _zombie(args: List[str], kill: bool = False) -> "subprocess.Popen[bytes]":
    child = subprocess.Popen([sys.executable, "-c", *args])
    if kill:
        time.sleep(0.3)
        child.send_signal(signal.SIGTERM)
    for _ in range(200):  # until it is a zombie (never reaped: no wait() before the read)
        status = zombie_wait_status(child.pid)
        if status is not None:
            return child
        time.sleep(0.02)
    raise AssertionError("the child never became a zombie")


@linux
def test_the_wait_status_of_an_unreaped_process_is_read_from_proc() -> None:
    exited = _zombie(["raise SystemExit(3)"])
    termed = _zombie(["import time; time.sleep(30)"], kill=True)
    try:
        assert format_exit_status(zombie_wait_status(exited.pid) or -1) == "exit-code 3"
        assert format_exit_status(zombie_wait_status(termed.pid) or -1) == "signal 15"
    finally:
        assert (exited.wait(), termed.wait()) == (3, -15)
    # reaped: gone from /proc, nothing to read
    assert zombie_wait_status(exited.pid) is None


@linux
def test_a_live_process_has_no_wait_status() -> None:
    import os

    assert zombie_wait_status(os.getpid()) is None


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ("exit-code 0", (0, None)),
        ("exit-code 255", (255, None)),
        ("signal 9", (None, 9)),
        ("exit-code 256", None),
        ("signal 0", None),
        ("signal 99", None),
        ("exit-code -1", None),
        ("exit-code 1e3", None),
        ("\x1b[2J", None),
        ("", None),
        (None, None),
    ],
)
def test_exit_details_are_read_back_strictly(detail: object, expected: object) -> None:
    assert parse_exit_status(detail) == expected  # type: ignore[arg-type]


def _ended(detail: str) -> Recording:
    uuid = "01a2fake-0000-0000-0000-000000000000"
    flow = Dataflow(uuid=uuid, name="d", nodes=[NodeProcess(id="early", dataflow=uuid, pid=7)])
    exit_ = ProcessEvent(uuid, "early", 7, 1000.0, "exited", detail)
    return Recording(path=None, header={"logs": {"daemon": "d"}}, dataflows=[flow], events=[exit_])


def test_exit_status_0_from_the_kernel_is_a_clean_end_and_says_so() -> None:
    """A node that ended on its own while its dataflow ran on: dora 1.1 logs nothing about
    it, so without the status it is unknown; with it, clean, resting on the status."""
    report = report_from_recording(_ended("exit-code 0"))
    (early,) = report.dataflows[0].nodes
    assert early.outcome == "clean"
    assert "the process's exit status from /proc, before dora reaped it" in early.rests_on
    assert any("exit status 0" in e for e in early.evidence)
    assert report_from_recording(_ended("")).dataflows[0].nodes[0].outcome != "clean"


def test_a_signal_from_the_kernel_is_not_clean() -> None:
    (early,) = report_from_recording(_ended("signal 15")).dataflows[0].nodes
    assert early.outcome == "terminated"
    (early,) = report_from_recording(_ended("exit-code 2")).dataflows[0].nodes
    assert early.outcome == "failed"


def test_a_kill_line_the_exit_status_contradicts_is_not_taken() -> None:
    """dora 0.5.0 logs "X was killed due to not stopping within the grace period" also for
    processes long gone; an exit status read from the kernel outweighs it."""
    from dora_doctor.logs import events as logevents

    recording = _ended("exit-code 0")
    uuid = recording.dataflows[0].uuid
    text = "early was killed due to not stopping within the 2s grace period"
    recording.logs = [
        logevents.LogEvent(logevents.STOP_REQUEST, 999.0, dataflow=uuid, source="coordinator"),
        logevents.LogEvent(logevents.GRACE_KILL, 1000.1, node="early", source="daemon", text=text),
    ]
    (early,) = report_from_recording(recording).dataflows[0].nodes
    assert early.outcome == "clean", early.evidence
    assert any("not taken" in e for e in early.evidence)
