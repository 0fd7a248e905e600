"""The stop watch lingers for dora's end line after the last node process is gone.

A clean exit and a SIGTERM look the same from outside; only dora's line tells them apart,
and it can come after the process has vanished. Real processes and a real growing log file
(the daemon's own 1.1.0 line, from tests/fixtures/dora-1.1.0), no dora needed.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from helpers import wait_for

from dora_doctor.capture.endwatch import END_LINE_LINGER_S, StopWatch
from dora_doctor.capture.logtail import LogFiles
from dora_doctor.model import NodeProcess

DAEMON_LINE = (  # dora 1.1.0 out/dora-daemon.txt
    '{"timestamp":"2026-11-25T14:05:38.279391Z","level":"ERROR","fields":{"message":'
    '"node exited with error: Signal(15)"},"target":"dora_daemon::spawn::prepared",'
    '"span":{"dataflow_id":"01a21306-9fed-704a-9fc0-e9ab5dc9227c","node_id":"crunch",'
    '"name":"node_failure"}}\n'
)


def watch_one(tmp_path: Path) -> "tuple[StopWatch, subprocess.Popen[bytes], Path]":
    log = tmp_path / "dora-daemon.txt"
    log.write_text("")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    node = NodeProcess("crunch", "01a21306-9fed-704a-9fc0-e9ab5dc9227c", proc.pid, proc.pid)
    out: "queue.Queue[Any]" = queue.Queue()
    watch = StopWatch([node], LogFiles(daemons=[log]), out)
    watch.start()
    return watch, proc, log


def test_the_watch_waits_for_the_end_line_and_ends_when_it_comes(tmp_path: Path) -> None:
    watch, proc, log = watch_one(tmp_path)
    try:
        proc.kill()
        proc.wait()
        wait_for(watch.all_exited, 10, "the exit seen")
        assert not watch.settled()  # gone, but dora has not said how
        with open(log, "a") as handle:
            handle.write(DAEMON_LINE)
        wait_for(watch.settled, 5, "the end line read")
    finally:
        watch.stop()


def test_the_watch_gives_up_on_the_end_line_after_the_linger(tmp_path: Path) -> None:
    watch, proc, _log = watch_one(tmp_path)
    try:
        proc.kill()
        proc.wait()
        wait_for(watch.all_exited, 10, "the exit seen")
        gone = time.time()
        wait_for(watch.settled, END_LINE_LINGER_S + 5, "the linger over")
        assert time.time() - gone >= END_LINE_LINGER_S - 0.2
    finally:
        watch.stop()
