"""``watch``'s baseline stop watch sleeps until the kernel wakes it: a log write (inotify) or a
process end (pidfd). It must still see dora's stop line and a node's exit at once, and it must
not look at the logs while nothing is written (that 100 ms poll was most of its cost).

Real processes and a real growing log file (the coordinator's own 1.1.0 stop line, from
tests/fixtures/dora-1.1.0), no dora needed.
"""

from __future__ import annotations

import os
import queue
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from helpers import wait_for

from dora_doctor.capture import endwatch
from dora_doctor.capture.endwatch import StopWatch
from dora_doctor.capture.logtail import LogFiles, LogWake
from dora_doctor.model import NodeProcess

UUID = "01a21306-9fed-704a-9fc0-e9ab5dc9227c"
STOP_LINE = (  # dora 1.1.0 out/dora-coordinator.txt
    '{"timestamp":"2026-11-25T14:05:36.233128Z","level":"INFO","fields":{"message":'
    '"successfully send stop dataflow `' + UUID + '` to all daemons"},'
    '"target":"dora_coordinator"}\n'
)

linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"),
    reason="inotify and pidfds are Linux's (Python >= 3.9)",
)


def readable(wake: LogWake) -> bool:
    return bool(select.select([wake.fileno()], [], [], 0)[0])


@linux
def test_a_write_wakes_and_clear_rearms(tmp_path: Path) -> None:
    log = tmp_path / "dora-coordinator.txt"
    log.write_text("")
    wake = LogWake.open([log])
    assert wake is not None
    try:
        assert not readable(wake)
        with open(log, "a") as handle:
            handle.write("a line\n")
        assert readable(wake)
        wake.clear()
        assert not readable(wake)
    finally:
        wake.close()


def test_a_file_that_cannot_be_watched_means_polling(tmp_path: Path) -> None:
    assert LogWake.open([tmp_path / "missing.txt"]) is None
    assert LogWake.open([]) is None


Baseline = Tuple[StopWatch, Path, "subprocess.Popen[bytes]", List[Tuple[str, float]]]


@pytest.fixture
def baseline(tmp_path: Path) -> Iterator[Baseline]:
    """A baseline stop watch (``on_stop`` set) on one sleeping process and one log."""
    log = tmp_path / "dora-coordinator.txt"
    log.write_text("")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    node = NodeProcess("idle", UUID, proc.pid, proc.pid)
    signs: List[Tuple[str, float]] = []
    watch = StopWatch(
        [node],
        LogFiles(coordinator=log),
        queue.Queue(),
        on_stop=lambda what, when: signs.append((what, when)),
    )
    try:
        yield watch, log, proc, signs
    finally:
        watch.stop()
        proc.kill()
        proc.wait()


@linux
def test_the_stop_line_is_seen_at_once_and_idle_logs_are_not_read(
    baseline: Baseline, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch, log, _proc, signs = baseline
    looks: List[float] = []
    poll_logs = watch._poll_logs

    def counted() -> None:
        looks.append(time.monotonic())
        poll_logs()

    monkeypatch.setattr(watch, "_poll_logs", counted)
    watch.start()
    wait_for(lambda: bool(looks), 5, "the first look")
    time.sleep(1.5)  # idle: a 100 ms poll would look 15 times
    assert len(looks) <= 2, f"{len(looks)} looks at idle logs in 1.5 s"
    written = time.time()
    with open(log, "a") as handle:
        handle.write(STOP_LINE)
    wait_for(lambda: bool(signs), 5, "the stop sign")
    seen = time.time() - written
    assert seen < 0.1 + endwatch.BASELINE_WAKE_GAP_S, f"stop line seen {seen:.3f} s late"
    assert "stop" in signs[0][0]


@linux
def test_a_node_exit_is_seen_at_once(
    baseline: Baseline,
) -> None:
    watch, _log, proc, signs = baseline
    watch.start()
    time.sleep(0.3)
    killed = time.time()
    threading.Thread(target=proc.kill).start()
    wait_for(watch.all_exited, 5, "the exit seen")
    assert signs and "exited" in signs[0][0]
    assert signs[0][1] - killed < 0.2
