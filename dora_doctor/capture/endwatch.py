"""Watch the shutdown window while the sampler runs: process exits and dora's log lines.

Nothing in a node's process says when dora asked it to stop or how it ended: dora's
coordinator logs the stop request and its daemon logs each node's failure (a clean exit
leaves no line at all). So this follows both log files from where they end when the watch
starts, and polls every node process for its exit, which gives an end time far more
precise than the sampler's one-second segments.

dora's own processes are polled too: a daemon or coordinator that crashes or is killed
writes no line about it, yet it changes what the watch can know. Without the coordinator no
stop request can be seen any more, so node ends come from process exits alone; without the
daemon nobody will stop or reap the nodes, so waiting for them to exit could last forever."""

from __future__ import annotations

import contextlib
import os
import queue
import select
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

import psutil

from dora_doctor.capture.logtail import LogFiles, LogWake, _coordinators, _Tail
from dora_doctor.dora.discover import process_state
from dora_doctor.executables import option_value
from dora_doctor.logs import events as logevents
from dora_doctor.logs import parse
from dora_doctor.model import NodeProcess, ProcessEvent, format_exit_status

POLL_S = 0.02
# ``watch``'s baseline, while no stop is under way (bench/watch_parts.py: the 20 ms poll of 8
# nodes costs ~5 % of one core, 100 ms ~1 %): the thread sleeps until a log file is written
# (inotify, logtail.LogWake) or a node or dora process ends (pidfds), and looks at
# everything anyway every BASELINE_DORA_S; where the kernel cannot wake it, logs and node
# processes are polled every BASELINE_POLL_S. The first sign of a stop switches to POLL_S.
BASELINE_POLL_S = 0.1
BASELINE_DORA_S = 1.0
# a log written many times a second wakes the thread at most this often (dora's stop line
# is then read up to this late: still well within the 0.3 s of issue 15)
BASELINE_WAKE_GAP_S = 0.05
# when the kernel wakes the thread for every log write and every process end, the look at
# everything is only a backstop (a log file replaced under its name is seen this late)
BASELINE_BACKSTOP_S = 5.0
# what starts a stop as far as sampling goes: dora's stop line, or an end of any node
_STOP_SIGNS = (
    logevents.STOP_REQUEST,
    logevents.NODE_EXIT,
    logevents.GRACE_KILL,
    logevents.KILLED,
    logevents.NODE_FINISHED,
    logevents.DATAFLOW_END,
)


@dataclass(frozen=True)
class DoraProcess:
    """One of dora's own processes the watch keeps an eye on."""

    role: str  # "daemon" or "coordinator"
    pid: int
    created: float  # psutil's create_time: a reused PID is not taken for it
    machine: Optional[str] = None  # a daemon's --machine-id (its nodes' machine)


def find_dora_processes(
    nodes: List[NodeProcess], coordinator_port: Optional[int]
) -> List[DoraProcess]:
    """The local daemon(s) that spawned ``nodes`` (their parent process) and the coordinator
    on ``coordinator_port``, as far as this user may see them."""
    found: List[DoraProcess] = []
    for node in nodes:
        if node.pid is None or node.remote:
            continue
        try:
            parent = psutil.Process(node.pid).parent()
            cmdline = parent.cmdline() if parent is not None else []
            # `dora daemon`, or `dora run`, which runs a daemon in its own process
            if parent is None or not {"daemon", "run"} & set(cmdline[:3]):
                continue
            machine = option_value(cmdline, "--machine-id") or node.machine
            daemon = DoraProcess("daemon", parent.pid, parent.create_time(), machine)
        except (psutil.Error, OSError):
            continue
        if daemon not in found:
            found.append(daemon)
    try:
        for proc in _coordinators(coordinator_port):
            found.append(DoraProcess("coordinator", proc.pid, proc.create_time()))
            break
    except (psutil.Error, OSError):
        pass
    return found


def _still_there(process: DoraProcess) -> bool:
    try:
        proc = psutil.Process(process.pid)
        return (
            abs(proc.create_time() - process.created) < 0.01
            and proc.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def gone_message(process: DoraProcess) -> str:
    """The one line the user reads when dora's daemon or coordinator vanishes mid-watch."""
    if process.role == "daemon":
        return (
            f"dora's daemon (pid {process.pid}) has exited: nobody stops or reaps its nodes "
            f"any more; dora-doctor watches {DAEMON_GONE_LINGER_S:g} s more for node exits, "
            "then reports what it saw"
        )
    return (
        f"dora's coordinator (pid {process.pid}) has exited: a stop request can no longer be "
        "seen in its log; node ends now come from their process exits alone"
    )


# After the last node process is gone, dora's line about how it ended (the daemon's failure
# line, or the coordinator's dataflow end that follows the daemon's report) can come a little
# later; without it a clean exit cannot be told from a SIGTERM, so the watch lingers this long.
END_LINE_LINGER_S = 2.0
_END_KINDS = (logevents.NODE_EXIT, logevents.GRACE_KILL, logevents.KILLED, logevents.NODE_FINISHED)

# After the last daemon died, its nodes' own ends (they lose their connection) come within
# milliseconds; nodes still running then are orphans that may never end.
DAEMON_GONE_LINGER_S = 2.0


class _ExitWaiter:
    """Sleeps until a poll interval passes, one of ``pids`` exits (Linux pidfds), or a log
    file is written (``wake``, inotify): in the baseline neither the node processes nor the
    logs need polling, and an exit or a stop line is still seen at once. Without pidfds (old
    kernels, Python < 3.9) it is a plain sleep and the processes are polled as before."""

    def __init__(self, pids: List[int], wake: Optional[LogWake] = None) -> None:
        self.exited = False  # a watched process ended: poll everything from now on
        self.written = False  # a watched log was written since the last wait
        self._fds: List[int] = []
        self._poller: Optional[select.poll] = None
        self._wake = wake
        opener = getattr(os, "pidfd_open", None)
        if opener is None or not hasattr(select, "poll"):
            return
        poller = select.poll()
        try:
            for pid in pids:
                fd = opener(pid)
                self._fds.append(fd)
                poller.register(fd, select.POLLIN)
        except OSError:  # gone already, or pidfds refused: poll the processes instead
            self.close()
            self.exited = True
            return
        if wake is not None:
            poller.register(wake.fileno(), select.POLLIN)
        self._poller = poller

    @property
    def available(self) -> bool:
        return self._poller is not None

    @property
    def logs_wake(self) -> bool:
        """Log writes wake the wait: the logs need no polling."""
        return self._poller is not None and self._wake is not None

    def wait(self, seconds: float) -> None:
        self.written = False
        if self._poller is None:
            time.sleep(seconds)
            return
        for fd, _ in self._poller.poll(int(seconds * 1000)):
            if self._wake is not None and fd == self._wake.fileno():
                self._wake.clear()
                self.written = True
            else:
                self.exited = True  # from now on the processes are polled every time
                self._poller.unregister(fd)  # an ended process's pidfd stays readable

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        self._poller = None
        if self._wake is not None:
            self._wake.close()
            self._wake = None


class StopWatch:
    """Polls node processes and log files in one thread; results go to ``output``."""

    def __init__(
        self,
        nodes: List[NodeProcess],
        files: LogFiles,
        output: "queue.Queue[Any]",
        dora: Sequence[DoraProcess] = (),
        on_stop: Optional[Callable[[str, float], None]] = None,
    ) -> None:
        """``on_stop(what, when)`` (``watch``'s baseline) is called once, from this thread, at
        the first sign of a stop (``when``: its time, as dora's line or the exit gives it);
        until then logs are polled every BASELINE_POLL_S and exits waited for by pidfd."""
        self.nodes = [n for n in nodes if n.pid is not None and not n.remote]
        self.on_stop = on_stop
        self.poll_s = POLL_S if on_stop is None else BASELINE_POLL_S
        self._dora_polled = 0.0
        self.tails = [_Tail(source, path) for source, path in files.all()]
        self.output = output
        self.dora = list(dora)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stopwatch", daemon=True)
        self._ended: Dict[str, float] = {}
        self._dora_gone: Dict[DoraProcess, float] = {}
        self._end_lines: Set[str] = set()  # nodes dora has said the end of
        self._dataflow_ended = False

    def start(self) -> None:
        self._thread.start()

    def all_exited(self) -> bool:
        return len(self._ended) == len(self.nodes)

    def settled(self, linger_s: float = END_LINE_LINGER_S) -> bool:
        """Every node process is gone, and dora has said how they ended (a line per node or
        the dataflow's end), or ``linger_s`` has passed since the last exit without it."""
        if not self.all_exited():
            return False
        if self._dataflow_ended or all(n.id in self._end_lines for n in self.nodes):
            return True
        last = max(self._ended.values(), default=0.0)
        return time.time() >= last + linger_s

    def daemons_gone_since(self) -> Optional[float]:
        """When the last of the watched daemons vanished, if every one of them has."""
        daemons = [p for p in self.dora if p.role == "daemon"]
        times = [self._dora_gone[p] for p in daemons if p in self._dora_gone]
        return max(times) if daemons and len(times) == len(daemons) else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._poll_logs()  # lines written in the last moments

    def _run(self) -> None:
        pids = [n.sample_pid or n.pid for n in self.nodes]
        # the baseline also wakes when dora's own processes end, or a log is written
        pids += [p.pid for p in self.dora if self.on_stop is not None and _still_there(p)]
        wake = LogWake.open(self.tails_paths()) if self.on_stop is not None else None
        exits = _ExitWaiter([pid for pid in pids if pid is not None], wake)
        woke = 0.0  # time.monotonic() of the last look at the logs after a write woke us
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                slow = self.on_stop is not None and not exits.exited
                every = BASELINE_BACKSTOP_S if exits.logs_wake else BASELINE_DORA_S
                due = now >= self._dora_polled + every
                if not slow or due:
                    self._dora_polled = now
                    self._poll_processes()
                    self._poll_dora()
                elif not exits.available:
                    self._poll_processes()
                if not slow or due or exits.written or not exits.logs_wake:
                    if exits.written and slow:
                        # a log written over and over: look at most every BASELINE_WAKE_GAP_S
                        time.sleep(max(0.0, woke + BASELINE_WAKE_GAP_S - now))
                        woke = time.monotonic()
                    self._poll_logs()
                if self.on_stop is None:
                    # a node's exit ends the sleep: its exit status is read before dora reaps it
                    exits.wait(self.poll_s)
                elif slow and exits.logs_wake:
                    exits.wait(max(0.0, self._dora_polled + every - time.monotonic()))
                else:
                    exits.wait(self.poll_s)
        finally:
            exits.close()

    def tails_paths(self) -> List[Path]:
        return [tail.path for tail in self.tails]

    def _stop_sign(self, what: str, when: Optional[float] = None) -> None:
        """The first sign of a stop: full rate from now on (once)."""
        if self.on_stop is None:
            return
        on_stop, self.on_stop = self.on_stop, None
        self.poll_s = POLL_S
        on_stop(what, time.time() if when is None else min(when, time.time()))

    def _poll_dora(self) -> None:
        for process in self.dora:
            if process in self._dora_gone or _still_there(process):
                continue
            now = time.time()
            self._dora_gone[process] = now
            kind = logevents.DAEMON_GONE if process.role == "daemon" else logevents.COORDINATOR_GONE
            self._stop_sign(f"dora's {process.role} has exited", now)
            self.output.put(
                logevents.LogEvent(
                    kind=kind,
                    time=now,
                    source="dora-doctor",
                    text=gone_message(process),
                    machine=process.machine,
                )
            )

    def _poll_processes(self) -> None:
        for node in self.nodes:
            if node.id in self._ended:
                continue
            pid = node.sample_pid or node.pid
            assert pid is not None
            # state and wait status in one read: dora reaps the zombie within milliseconds
            running, status = process_state(pid)
            if not running:
                now = time.time()
                detail = None if status is None else format_exit_status(status)
                self._ended[node.id] = now
                self.output.put(ProcessEvent(node.dataflow, node.id, pid, now, "exited", detail))
                self._stop_sign(f"node {node.id} exited", now)

    def _poll_logs(self) -> None:
        dataflows = {n.dataflow for n in self.nodes}
        for tail in self.tails:
            for event in parse.parse_lines(tail.lines(), tail.source):
                if event.kind in _STOP_SIGNS and event.dataflow in (None, *dataflows):
                    self._stop_sign(f"dora's log: {event.kind}", event.time)
                if event.kind in _END_KINDS and event.node:
                    self._end_lines.add(event.node)
                elif event.kind == logevents.DATAFLOW_END and (
                    event.dataflow is None or event.dataflow in {n.dataflow for n in self.nodes}
                ):
                    self._dataflow_ended = True
                self.output.put(event)
