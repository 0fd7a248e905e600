"""Per-thread CPU time from ``/proc``: it tells "running without the GIL" from "waiting".

py-spy's ``--gil`` counts say which thread held the GIL, but a thread without it may be
running (a C call that released the GIL: numpy, a codec, I/O in progress) or blocked (waiting
for a dora event, a lock, or the GIL itself), and for a stop that is late the difference is
the whole story. The kernel accounts each thread's user and system time exactly, in
``/proc/PID/task/TID/stat``; reading it is one small file per thread, needs no ptrace and
never stops the process. So :class:`CpuMeter` polls it every 50 ms next to py-spy and emits,
per node and 250 ms window, the CPU seconds each thread used and the share of polls that
found it runnable (state R). CPU time alone undercounts a running thread on a loaded machine
(2 cores, py-spy, dora and the nodes): it is runnable but not on a CPU; the state polls do
not. Thread ids are native ids, the same py-spy prints, so the lanes can join the two.

Resolution: the kernel's clock tick (``SC_CLK_TCK``, 10 ms) for CPU time, about 4 % of a
window, and five polls per window for the state: enough to tell a thread that runs from one
that sleeps. Where ``/proc`` does not exist nothing is emitted, and the reports fall back to
"not holding the GIL".
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from dora_doctor.capture.daemonlink import DaemonLinkTracker
from dora_doctor.capture.sigcgt import SigCgtTracker
from dora_doctor.model import CpuSegment, NodeProcess

POLL_S = 0.05
POLLS_PER_WINDOW = 5  # a window every 250 ms
PROC = Path("/proc")


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100


CLOCK_TICKS = _clock_ticks()


@dataclass(frozen=True)
class ThreadStat:
    cpu_s: float  # user + system CPU seconds so far
    runnable: bool  # state R: on a CPU, or ready and waiting for one
    name: str = ""  # comm: at most 15 bytes, set by the thread (dora's Rust threads name theirs)


MAX_NAME = 15  # TASK_COMM_LEN - 1


def parse_stat(text: str) -> Optional[ThreadStat]:
    """State and CPU seconds from one ``/proc/.../stat`` line.

    The command name in parentheses may itself hold spaces and parentheses, so fields are
    counted from the last ``)``: state is field 3, utime and stime are 14 and 15 (proc(5)).
    """
    close = text.rfind(")")
    if close < 0:
        return None
    fields = text[close + 2 :].split()
    try:
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (IndexError, ValueError):
        return None
    open_ = text.find("(")
    name = text[open_ + 1 : close][:MAX_NAME] if 0 <= open_ < close else ""
    return ThreadStat(cpu, fields[0] == "R", name)


def read_threads(pid: int, proc: Path = PROC) -> Dict[int, ThreadStat]:
    """Every live thread of ``pid`` (empty when the process is gone)."""
    try:
        task = f"{proc}/{pid}/task"
        tids = [int(name) for name in os.listdir(task) if name.isdigit()]
    except OSError:
        return {}
    found: Dict[int, ThreadStat] = {}
    for tid in tids:
        try:  # plain os calls: `watch` reads every thread of every node, all day long
            fd = os.open(f"{task}/{tid}/stat", os.O_RDONLY)
            try:
                text = os.read(fd, 4096).decode("utf-8", "replace")
            finally:
                os.close(fd)
        except OSError:
            continue  # the thread ended between listdir and read
        stat = parse_stat(text)
        if stat is not None:
            found[tid] = stat
    return found


def cpu_used_between(
    before: Dict[int, ThreadStat], after: Dict[int, ThreadStat]
) -> Dict[int, float]:
    """Each thread's CPU seconds between two readings; a thread new in ``after`` started
    inside the window, so all its time counts; a thread gone from ``after`` is left out."""
    return {
        tid: round(max(0.0, stat.cpu_s - (before[tid].cpu_s if tid in before else 0.0)), 4)
        for tid, stat in after.items()
    }


@dataclass
class _Window:
    start: float
    first: Dict[int, ThreadStat]
    polls: int = 0
    runnable: Dict[int, int] = field(default_factory=dict)

    def add(self, reading: Dict[int, ThreadStat]) -> None:
        self.polls += 1
        for tid, stat in reading.items():
            self.runnable[tid] = self.runnable.get(tid, 0) + int(stat.runnable)


class CpuMeter:
    """Polls every sampled node's threads each ``poll_s``; a segment per window to ``output``."""

    def __init__(
        self,
        nodes: List[NodeProcess],
        output: "queue.Queue[Any]",
        poll_s: float = POLL_S,
        polls_per_window: int = POLLS_PER_WINDOW,
    ) -> None:
        self.nodes = [n for n in nodes if n.sample_pid is not None]
        self.output = output
        self.poll_s = poll_s
        self.polls_per_window = polls_per_window
        self._windows: Dict[str, _Window] = {}
        self._named: Dict[str, Dict[int, str]] = {}  # node → the names already emitted
        # SigCgt rides on the same poll: a SIGTERM handler installed after discovery
        self._sigcgt = SigCgtTracker(self.nodes)
        # ... and so does the node's connection to its daemon: has it called Node() yet?
        self._link = DaemonLinkTracker(self.nodes)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)

    def start(self) -> None:
        if PROC.joinpath("self", "task").is_dir():
            self._thread.start()

    def speed_up(self, poll_s: float = POLL_S, polls_per_window: int = POLLS_PER_WINDOW) -> None:
        """Poll every ``poll_s`` from now on (``watch``: a stop began); the baseline's slow
        wait is cut short, and the window under way closes after its remaining polls."""
        self.poll_s = poll_s
        self.polls_per_window = polls_per_window
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(2.0)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._poll()

    def _new_names(self, node_id: str, reading: Dict[int, ThreadStat]) -> Dict[int, str]:
        """Names of threads not named before for this node (or renamed): once per thread,
        not per window, so a long recording does not repeat them every 250 ms."""
        known = self._named.setdefault(node_id, {})
        new = {tid: s.name for tid, s in reading.items() if s.name and known.get(tid) != s.name}
        known.update(new)
        return new

    def _poll(self) -> None:
        for node in self.nodes:
            assert node.sample_pid is not None
            now = time.time()
            reading = read_threads(node.sample_pid)
            if not reading:
                continue  # gone; the part-window before the exit is dropped
            for change in (self._sigcgt.poll(node, now), self._link.poll(node, now)):
                if change is not None:
                    self.output.put(change)
            window = self._windows.get(node.id)
            if window is None:
                self._windows[node.id] = _Window(now, reading)
                continue
            window.add(reading)
            if window.polls >= self.polls_per_window:
                self.output.put(
                    CpuSegment(
                        dataflow=node.dataflow,
                        node=node.id,
                        pid=node.sample_pid,
                        start=window.start,
                        end=now,
                        cpu=cpu_used_between(window.first, reading),
                        runnable={
                            tid: count / window.polls for tid, count in window.runnable.items()
                        },
                        names=self._new_names(node.id, reading),
                    )
                )
                self._windows[node.id] = _Window(now, reading)
