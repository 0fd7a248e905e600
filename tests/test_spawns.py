"""`watch` asks `dora list` only when /proc shows a dora daemon, or a process one spawned:
real processes, a real /proc (a script named `dora` started as `dora daemon`, which spawns a
child when told to)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dora_doctor.capture.spawns import SpawnSignal

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

FAKE_DAEMON = """\
import signal, subprocess, sys, time
children = []
signal.signal(signal.SIGUSR1, lambda *_: children.append(subprocess.Popen(["sleep", "30"])))
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def test_a_daemon_and_its_spawns_are_signs_other_processes_are_not(tmp_path: Path) -> None:
    script = tmp_path / "dora"
    script.write_text(FAKE_DAEMON)
    signs = SpawnSignal()
    assert signs.changed()  # the first look: everything is new
    # other processes of this machine (other dora instances too) may come and go meanwhile:
    # what counts is which PIDs were taken for signs
    unrelated = subprocess.Popen(["sleep", "30"])
    daemon = None
    try:
        time.sleep(0.1)
        signs.changed()
        assert unrelated.pid not in signs.signs, "a process no dora daemon spawned is no sign"
        daemon = subprocess.Popen(
            [sys.executable, str(script), "daemon", "--quiet"], stdout=subprocess.PIPE, text=True
        )
        assert daemon.stdout is not None and daemon.stdout.readline() == "ready\n"
        assert signs.changed() and daemon.pid in signs.signs, "a new dora daemon is a sign"
        daemon.send_signal(signal.SIGUSR1)  # it spawns a node
        deadline = time.monotonic() + 10
        spawned: set = set()  # type: ignore[type-arg]
        while not spawned and time.monotonic() < deadline:
            time.sleep(0.05)
            spawned = set(_children(daemon.pid))
        assert spawned
        assert signs.changed() and spawned <= signs.signs, "a process it spawned is a sign"
        assert daemon.pid not in signs.signs  # known already: not new again
    finally:
        unrelated.kill()
        unrelated.wait()
        if daemon is not None:
            for child in _children(daemon.pid):
                subprocess.run(["kill", str(child)], check=False)
            daemon.kill()
            daemon.wait()


def _children(pid: int) -> list:  # type: ignore[type-arg]
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def test_daemons_of_another_coordinator_are_no_sign_once_ours_is_known(tmp_path: Path) -> None:
    script = tmp_path / "dora"
    script.write_text(FAKE_DAEMON)
    signs = SpawnSignal(port=40001)
    signs.changed()
    started = []
    try:
        for port in ("40001", "40002"):
            daemon = subprocess.Popen(
                [sys.executable, str(script), "daemon", "--coordinator-port", port],
                stdout=subprocess.PIPE,
                text=True,
            )
            started.append(daemon)
            assert daemon.stdout is not None and daemon.stdout.readline() == "ready\n"
        ours, theirs = started
        signs.changed()
        assert ours.pid in signs.signs and theirs.pid not in signs.signs
        theirs.send_signal(signal.SIGUSR1)  # another coordinator's dataflow starts a node
        deadline = time.monotonic() + 10
        while not _children(theirs.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _children(theirs.pid)
        signs.changed()
        assert not set(_children(theirs.pid)) & signs.signs
    finally:
        for daemon in started:
            for child in _children(daemon.pid):
                subprocess.run(["kill", str(child)], check=False)
            daemon.kill()
            daemon.wait()
