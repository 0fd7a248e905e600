"""The analysed result every reporter renders: per dataflow, per node, what was found.

Field names follow the report schema ``dora-doctor.report/1`` one to one, so
``to_dict`` is the JSON report. Unknown values stay ``None`` (JSON ``null``): a reporter
must never have to guess whether a zero was measured or invented.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from dora_doctor import __version__
from dora_doctor.recording.model import SkippedRecords

REPORT_SCHEMA = "dora-doctor.report/1"


class Outcome(str, Enum):
    """How a node's process ended, as far as the evidence shows (docs/diagnosis.md)."""

    CLEAN = "clean"  # it exited on its own, and dora or its exit status says so
    TERMINATED = "terminated"  # SIGTERM ended it (dora >= 0.4 at the grace deadline)
    KILLED = "killed"  # SIGKILL ended it
    FAILED = "failed"  # it exited with an error or another signal
    RUNNING = "running"  # still running when the watch ended
    UNKNOWN = "unknown"  # it ended, and nothing says how

    def __str__(self) -> str:
        return self.value


class Cause(str, Enum):
    """Why a node stopped the way it did (docs/diagnosis.md)."""

    NONE = "none"  # it reacted to STOP and ended in time: nothing to fix
    GIL_CONTENTION = "gil-contention"  # another thread held the GIL, so STOP could not be read
    SLOW_SHUTDOWN = "slow-shutdown"  # it reacted, and its cleanup outlasted the grace
    STUCK = "stuck"  # it never read STOP, and no other thread kept it from running
    WAITING_FOR_PEER = "waiting-for-peer"  # inside Node() until every node registers
    STARTING = "starting"  # it had not reached Node() yet: STOP cannot reach it
    UNKNOWN = "unknown"  # the evidence is missing or conflicts: see evidence

    def __str__(self) -> str:
        return self.value


@dataclass
class Inside:
    """The library call a holder is inside: where the time went, not what the user edits."""

    function: str
    file: str
    line: int


@dataclass
class Holder:
    """A thread seen holding the GIL at one place, with its share of the window's samples."""

    thread: str
    function: str
    file: str
    line: int
    share: float
    native: Optional[bool] = None
    inside: Optional[Inside] = None
    # dora's runtime: the operator (its YAML id) whose code the holder's stack runs
    operator: Optional[str] = None


@dataclass
class GilFinding:
    held_share: Optional[float] = None
    holders: List[Holder] = field(default_factory=list)


@dataclass
class Advice:
    kind: str  # "grace", "code" or "config"
    text: str
    location: Optional[str] = None


@dataclass
class LocalValue:
    """A local variable of one frame at one moment (``inspect --locals``); ``value`` is
    ``<redacted: N chars>`` unless the report was asked to show values."""

    moment: str  # "stop" or "end"
    thread: str
    function: str
    file: str
    line: int
    name: str
    value: str
    arg: bool = False


@dataclass
class DumpedThread:
    """One thread of the last dump: where it was, innermost frame first (``file:line``;
    ``native`` frames are C code)."""

    thread: str
    owns_gil: bool
    active: bool
    frames: List[str] = field(default_factory=list)


@dataclass
class LastDumpFinding:
    """What a terminated or killed node was doing at its last dump before dora's deadline
    (``capture/lastdump.py``): ``before`` is ``sigterm``, ``sigkill`` or ``rolling`` (grace
    unknown: the latest of dumps taken every 0.5 s)."""

    before: str
    seconds_after_stop: Optional[float]
    seconds_before_end: Optional[float]
    threads: List[DumpedThread] = field(default_factory=list)
    error: Optional[str] = None


@dataclass
class NodeFinding:
    id: str
    pid: Optional[int]
    python: bool
    samples: int = 0
    python_version: Optional[str] = None
    machine: Optional[str] = None  # dora's machine id of the daemon that ran it, if it has one
    # dora's runtime for Python operators: the operator (its YAML id) the verdict is about
    operator: Optional[str] = None
    sample_rate_hz: Optional[float] = None
    skipped: Optional[str] = None
    outcome: Optional[Outcome] = None
    stop_duration_s: Optional[float] = None
    gil: GilFinding = field(default_factory=GilFinding)
    top_frame: Optional[str] = None
    cause: Optional[Cause] = None
    evidence: List[str] = field(default_factory=list)
    # the kinds of evidence the outcome and cause rest on (short phrases, docs/diagnosis.md)
    rests_on: List[str] = field(default_factory=list)
    advice: List[Advice] = field(default_factory=list)
    locals: Optional[List[LocalValue]] = None  # None: not recorded (no --locals)
    # None: no dump, or the node was not terminated or killed
    last_dump: Optional[LastDumpFinding] = None


@dataclass
class Suggestion:
    grace_s: Optional[float]
    command: str
    would_help: bool
    reason: str


@dataclass
class DataflowFinding:
    uuid: str
    name: Optional[str]
    nodes: List[NodeFinding] = field(default_factory=list)
    suggestion: Optional[Suggestion] = None


@dataclass
class Diagnosis:
    dora_version: Optional[str]
    dataflows: List[DataflowFinding] = field(default_factory=list)
    recording: Optional[str] = None
    schema: str = REPORT_SCHEMA
    tool_version: str = __version__
    # records of the recording the reader could not use; left out of the JSON when none were
    skipped_records: Optional[SkippedRecords] = None

    def to_dict(self) -> Dict[str, Any]:
        data = _plain(asdict(self))
        if not (self.skipped_records and self.skipped_records.count):
            data.pop("skipped_records")
        ordered = {"schema": data.pop("schema"), "tool_version": data.pop("tool_version")}
        ordered.update(data)
        return ordered


def _plain(value: Any) -> Any:
    """Enums as their string values, so the dict is plain JSON data."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
