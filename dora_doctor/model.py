"""The plain data that flows from discovery through sampling into a recording.

Everything here is a small dataclass with no behaviour beyond conversion helpers, so a
recording read back from disk gives the same objects the live sampler produced, and the
analysis can be tested on either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple


@dataclass(frozen=True)
class Frame:
    """One Python frame as py-spy reports it; ``line`` 0 means py-spy did not know it."""

    function: str
    file: str
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def to_list(self) -> List[object]:
        return [self.function, self.file, self.line]

    @classmethod
    def from_list(cls, value: List[object]) -> "Frame":
        function, file, line = value
        return cls(str(function), str(file), int(line))  # type: ignore[call-overload]


Stack = Tuple[Frame, ...]
"""Frames from the outermost (thread entry) to the innermost (where the thread is now)."""


@dataclass
class NodeProcess:
    """A dora node and the operating-system process that runs it.

    ``pid`` is what dora reports (may be a ``uv run`` wrapper); ``sample_pid`` is the
    Python interpreter py-spy should attach to, or ``None`` when the node cannot be sampled
    (``skip_reason`` says why).
    """

    id: str
    dataflow: str
    pid: Optional[int] = None
    sample_pid: Optional[int] = None
    python: bool = False
    python_version: Optional[str] = None
    status: Optional[str] = None
    machine: Optional[str] = None
    skip_reason: Optional[str] = None
    remote: bool = False  # its process is on another machine: neither sampled nor watched here
    # /proc/PID/status SigCgt bit 14 at discovery: does Python (or C) catch SIGTERM? None: unread
    # (later changes are ``sigterm-caught`` / ``sigterm-not-caught`` process events)
    catches_sigterm: Optional[bool] = None
    # the interpreter's installation prefix (the directory above its bin/): its lib/pythonX.Y
    # is the standard library, which is never the user's code
    python_prefix: Optional[str] = None
    started: Optional[float] = None  # the process's start (wall clock), for "starting for N s"
    # dora's runtime for Python operators: operator id (the YAML's) -> its Python file, as the
    # runtime was given it (absolute when the process's working directory was readable), so
    # the analysis can name the operator whose code a frame is without reading the YAML
    operators: Dict[str, str] = field(default_factory=dict)
    # where ``Node()`` connects to its daemon (DORA_NODE_CONFIG ``daemon_communication: !Tcp``,
    # ``127.0.0.1:36687``); None for another transport or an unreadable environment. Whether
    # the process holds that connection is re-read while sampling (capture/daemonlink.py)
    daemon_addr: Optional[str] = None


@dataclass
class Dataflow:
    uuid: str
    name: Optional[str]
    status: Optional[str] = None
    nodes: List[NodeProcess] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name or self.uuid


@dataclass
class Span:
    """A thread stayed in ``stack`` from ``start`` to ``end`` (wall-clock seconds)."""

    start: float
    end: float
    stack: Stack


@dataclass
class ThreadTrack:
    """What one thread was doing during one sampling segment."""

    thread_id: int
    name: str
    spans: List[Span] = field(default_factory=list)


@dataclass
class StackSegment:
    """Every thread's stack over one sampling segment of one node (py-spy ``--idle``).

    ``ticks`` is the number of samples py-spy took; each tick saw every thread, so a span
    covers ``duration * rate`` samples of its thread.
    """

    dataflow: str
    node: str
    pid: int
    start: float
    end: float
    ticks: int
    errors: int
    threads: List[ThreadTrack] = field(default_factory=list)


@dataclass
class GilStack:
    """``count`` samples in a segment found ``thread`` holding the GIL in ``stack``."""

    thread_id: int
    thread: str
    stack: Stack
    count: int


@dataclass
class GilSegment:
    """Who held the GIL during one sampling segment of one node (py-spy ``--gil``).

    Samples in which no thread held the GIL do not appear: ``held`` counts only samples
    with a holder, so the share is ``held`` over the ticks of the stack segment covering the
    same time.
    """

    dataflow: str
    node: str
    pid: int
    start: float
    end: float
    held: int
    errors: int
    stacks: List[GilStack] = field(default_factory=list)


# ProcessEvent kinds: whether the process catches SIGTERM changed (``SigCgt``, re-read while
# sampling by capture/sigcgt.py; the header's ``catches_sigterm`` is the answer at discovery)
SIGTERM_CAUGHT = "sigterm-caught"
SIGTERM_NOT_CAUGHT = "sigterm-not-caught"
# ... and whether it holds a TCP connection to its daemon's address, i.e. has called ``Node()``
# (capture/daemonlink.py): the first read, then the change to connected
DAEMON_CONNECTED = "daemon-connected"
DAEMON_NOT_CONNECTED = "daemon-not-connected"
# the kinds above: facts for the analysis, never a sampler's trouble to show the user
PROCESS_FACTS = (SIGTERM_CAUGHT, SIGTERM_NOT_CAUGHT, DAEMON_CONNECTED, DAEMON_NOT_CONNECTED)


def format_exit_status(wait_status: int) -> Optional[str]:
    """A kernel wait status as an ``exited`` record's detail: ``exit-code N`` or ``signal N``
    (what :func:`parse_exit_status` reads back); None for anything else."""
    if os.WIFEXITED(wait_status):
        return f"exit-code {os.WEXITSTATUS(wait_status)}"
    if os.WIFSIGNALED(wait_status):
        return f"signal {os.WTERMSIG(wait_status)}"
    return None


def parse_exit_status(detail: Optional[str]) -> Optional[Tuple[Optional[int], Optional[int]]]:
    """(exit code, signal) from an ``exited`` record's detail; None when it holds neither
    (no status was read, or the text is not one: a recording is untrusted input)."""
    kind, _, number = (detail or "").partition(" ")
    if not number.isdigit() or len(number) > 3:
        return None
    if kind == "exit-code" and int(number) <= 255:
        return int(number), None
    if kind == "signal" and 0 < int(number) < 65:
        return None, int(number)
    return None


@dataclass
class ProcessEvent:
    """Something happened to a node's process: ``kind`` is ``exited``, ``sampler-error``,
    ``sampler-degraded``, ``sigterm-caught`` / ``sigterm-not-caught`` (capture/sigcgt.py), or
    ``daemon-not-connected`` / ``daemon-connected`` (capture/daemonlink.py). An ``exited``
    record's detail is the kernel's exit status when it could be read before dora reaped the
    process (:func:`format_exit_status`), else None."""

    dataflow: str
    node: str
    pid: int
    time: float
    kind: str
    detail: Optional[str] = None


@dataclass
class CpuSegment:
    """What the kernel said of each thread of one node from ``start`` to ``end`` (/proc).

    ``cpu`` holds the CPU seconds each thread used; ``runnable`` the share of polls that
    found it running or ready to run (state R), which still counts a thread that wanted a
    CPU on a busy machine. Threads are keyed by native id, the same id py-spy reports, so a
    lane can say whether a thread without the GIL was running (a C call that released it)
    or waiting.
    """

    dataflow: str
    node: str
    pid: int
    start: float
    end: float
    cpu: Dict[int, float] = field(default_factory=dict)
    runnable: Dict[int, float] = field(default_factory=dict)
    # the kernel's name (comm) of each thread first seen, or renamed, in this window: dora's
    # own threads are named, so their absence says Node() was not called yet
    names: Dict[int, str] = field(default_factory=dict)


# When a ``py-spy dump --locals`` snapshot was taken (``inspect --locals``)
LOCALS_AT_STOP = "stop"  # when the stop request was seen
LOCALS_AT_END = "end"  # when the watch ended, for nodes still running


@dataclass(frozen=True)
class LocalVar:
    name: str
    arg: bool  # a function argument, not a local assigned in the body
    value: str  # py-spy's repr of the value, as it read it


@dataclass
class FrameLocals:
    function: str
    file: str
    line: int
    variables: List[LocalVar] = field(default_factory=list)


@dataclass
class ThreadLocals:
    """One thread's frames that have variables, innermost (where it is now) first."""

    thread_id: int
    name: str
    frames: List[FrameLocals] = field(default_factory=list)


@dataclass
class LocalsSnapshot:
    dataflow: str
    node: str
    pid: int
    time: float
    moment: str  # LOCALS_AT_STOP or LOCALS_AT_END
    threads: List[ThreadLocals] = field(default_factory=list)
    error: Optional[str] = None  # why the dump failed (then ``threads`` is empty)


# Which of dora's deadlines a last dump was taken before (``capture/lastdump.py``)
DUMP_BEFORE_SIGTERM = "sigterm"  # just before the SIGTERM at the grace (dora ≥ 0.4)
DUMP_BEFORE_SIGKILL = "sigkill"  # just before the SIGKILL (1.5 × grace; 0.3.x: the grace)
DUMP_ROLLING = "rolling"  # the grace was not known: the latest of dumps taken every ROLL_S


@dataclass(frozen=True)
class DumpFrame:
    function: str
    file: str
    line: int
    native: bool  # a C frame (``py-spy dump --native``), not Python code


@dataclass
class DumpThread:
    """One thread of a last dump, innermost frame first."""

    thread_id: int
    name: str
    active: bool
    owns_gil: bool
    frames: List[DumpFrame] = field(default_factory=list)


@dataclass
class LastDump:
    """A full dump with native frames of a node still alive just before one of dora's
    deadlines: what it was doing when it was terminated or killed."""

    dataflow: str
    node: str
    pid: int
    time: float
    before: str  # DUMP_BEFORE_SIGTERM, DUMP_BEFORE_SIGKILL or DUMP_ROLLING
    threads: List[DumpThread] = field(default_factory=list)
    error: Optional[str] = None  # why the dump failed (then ``threads`` is empty)


# The reason given for a node of the dataflow that runs on another machine: py-spy reads only
# processes on its own machine.
REMOTE = "remote, not sampled"
# ... and for one whose process discovery found to run no Python: a node a post-mortem knows
# only from dora's logs has no reason at all, and is not called "not Python"
NOT_PYTHON = "not Python"


@dataclass
class SamplerOptions:
    rate: int = 200
    segment_s: int = 1
    # Measured with bench/overhead.py on a CPU-bound node at 200 Hz: pausing it for every
    # sample (py-spy's default) cost it 14-19 % of its throughput, reading without pausing
    # 1.3 %; a torn stack now and then is a small price in a doctor meant for live robots.
    nonblocking: bool = True
    # ``watch``'s light baseline (bench/watch_parts.py): until escalate() only the stacks
    # recorder runs, at this rate, in long segments (py-spy's start-up, ~30 ms of CPU, is
    # much of a low-rate recorder's cost; a stop ends the segment under way and keeps it);
    # None samples at full rate from the start
    baseline_rate: Optional[int] = None
    baseline_segment_s: int = 300
