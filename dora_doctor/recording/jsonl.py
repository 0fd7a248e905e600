"""The recording: a versioned, append-only JSON Lines file of everything observed.

Line 1 is a header (``{"type": "header", "schema": "dora-doctor.recording/1", ...}``);
every later line is one record, written and flushed as it arrives, so a Ctrl-C or a kill
leaves a file that reads back up to its last complete line. Frames are stored once, in
``frames`` records that come before their first use, and stacks refer to them by index:
a pure-Python loop changes its line at every sample, and repeating whole stacks would make
a 30 s recording of 10 nodes weigh tens of megabytes.

Analysis reads recordings only through :func:`read_recording`; it never talks to processes.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Union

from dora_doctor import __version__
from dora_doctor.errors import DoctorError
from dora_doctor.logs.events import LogEvent
from dora_doctor.model import (
    CpuSegment,
    Dataflow,
    Frame,
    FrameLocals,
    GilSegment,
    GilStack,
    LocalsSnapshot,
    LocalVar,
    NodeProcess,
    ProcessEvent,
    Span,
    Stack,
    StackSegment,
    ThreadLocals,
    ThreadTrack,
)

SCHEMA_NAME = "dora-doctor.recording"
SCHEMA_VERSION = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_VERSION}"

Record = Union[StackSegment, GilSegment, CpuSegment, ProcessEvent, LogEvent, LocalsSnapshot]


@dataclass
class Recording:
    """A recording read back: the header's facts and every record, in file order."""

    path: Optional[Path]
    header: Dict[str, Any]
    dataflows: List[Dataflow]
    stacks: List[StackSegment] = field(default_factory=list)
    gil: List[GilSegment] = field(default_factory=list)
    cpu: List[CpuSegment] = field(default_factory=list)
    events: List[ProcessEvent] = field(default_factory=list)
    logs: List[LogEvent] = field(default_factory=list)
    locals: List[LocalsSnapshot] = field(default_factory=list)
    malformed_lines: int = 0
    truncated: bool = False

    @property
    def sample_rate(self) -> float:
        """Samples per second per node the sampler asked py-spy for (100 if unknown)."""
        sampler = self.header.get("sampler")
        rate = sampler.get("rate") if isinstance(sampler, dict) else None
        return float(rate) if isinstance(rate, (int, float)) and rate > 0 else 100.0

    @property
    def dora_version(self) -> Optional[str]:
        value = self.header.get("dora_version")
        return str(value) if value else None


def make_header(
    dataflows: Sequence[Dataflow],
    dora_version: Optional[str],
    sampler: Dict[str, Any],
) -> Dict[str, Any]:
    """The first line: enough context to analyse the file on another machine, later."""
    return {
        "type": "header",
        "schema": SCHEMA,
        "tool_version": __version__,
        "dora_version": dora_version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "clocks": {"wall": time.time(), "monotonic": time.monotonic()},
        "host": {"system": platform.system(), "machine": platform.machine()},
        "sampler": sampler,
        "dataflows": [dataflow_to_dict(df) for df in dataflows],
    }


class RecordingWriter:
    """Appends records to a new recording file, one flushed line each."""

    def __init__(self, path: Path, header: Dict[str, Any]) -> None:
        self.path = path
        try:
            self._file: IO[str] = open(path, "x", encoding="utf-8")  # noqa: SIM115
        except FileExistsError as err:
            raise DoctorError(
                f"{path} already exists: dora-doctor does not overwrite files, "
                "choose another --record path"
            ) from err
        except OSError as err:
            raise DoctorError(f"cannot create {path}: {err.strerror}") from err
        self._frames: Dict[Frame, int] = {}
        self._line(header)

    def write(self, record: Record) -> None:
        if isinstance(record, StackSegment):
            self._new_frames(s.stack for t in record.threads for s in t.spans)
            self._line(self._stack_segment(record))
        elif isinstance(record, GilSegment):
            self._new_frames(s.stack for s in record.stacks)
            self._line(self._gil_segment(record))
        elif isinstance(record, CpuSegment):
            self._line(self._cpu_segment(record))
        elif isinstance(record, LogEvent):
            self._line({"type": "log", **asdict(record)})
        elif isinstance(record, LocalsSnapshot):
            self._line(_locals_dict(record))
        else:
            self._line({"type": "process", **_event_dict(record)})

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self, value: Dict[str, Any]) -> None:
        self._file.write(json.dumps(value, separators=(",", ":")) + "\n")
        self._file.flush()

    def _new_frames(self, stacks: Iterator[Stack]) -> None:
        new: List[List[object]] = []
        for stack in stacks:
            for frame in stack:
                if frame not in self._frames:
                    self._frames[frame] = len(self._frames)
                    new.append(frame.to_list())
        if new:
            self._line({"type": "frames", "first": len(self._frames) - len(new), "frames": new})

    def _refs(self, stack: Stack) -> List[int]:
        return [self._frames[f] for f in stack]

    def _stack_segment(self, seg: StackSegment) -> Dict[str, Any]:
        return {
            "type": "stacks",
            **_segment_head(seg.dataflow, seg.node, seg.pid, seg.start, seg.end, seg.errors),
            "ticks": seg.ticks,
            "threads": [
                {
                    "id": t.thread_id,
                    "name": t.name,
                    "spans": [
                        [round(s.start, 6), round(s.end, 6), self._refs(s.stack)] for s in t.spans
                    ],
                }
                for t in seg.threads
            ],
        }

    def _gil_segment(self, seg: GilSegment) -> Dict[str, Any]:
        return {
            "type": "gil",
            **_segment_head(seg.dataflow, seg.node, seg.pid, seg.start, seg.end, seg.errors),
            "held": seg.held,
            "stacks": [
                {
                    "thread_id": s.thread_id,
                    "thread": s.thread,
                    "stack": self._refs(s.stack),
                    "count": s.count,
                }
                for s in seg.stacks
            ],
        }

    @staticmethod
    def _cpu_segment(seg: CpuSegment) -> Dict[str, Any]:
        return {
            "type": "cpu",
            "dataflow": seg.dataflow,
            "node": seg.node,
            "pid": seg.pid,
            "start": round(seg.start, 6),
            "end": round(seg.end, 6),
            "threads": [
                [tid, seconds, round(seg.runnable.get(tid, 0.0), 3)]
                for tid, seconds in seg.cpu.items()
            ],
        }


def read_recording(path: Path) -> Recording:
    """Read a recording, tolerating a cut-off last line (the writer was killed mid-line)."""
    with open_recording(path) as handle:
        return parse_recording(handle, path)


def open_recording(path: Path) -> IO[str]:
    """The recording's lines, or the one-line error a user can act on."""
    try:
        return open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    except FileNotFoundError as err:
        raise DoctorError(f"{path}: no such recording") from err
    except IsADirectoryError as err:
        raise DoctorError(f"{path} is a directory, not a recording") from err
    except OSError as err:
        raise DoctorError(f"cannot read {path}: {err.strerror}") from err


def parse_recording(lines: Iterator[str], path: Optional[Path] = None) -> Recording:
    name = str(path) if path else "input"
    first = next(lines, "")
    header = _loads(first)
    if (
        header is None
        or header.get("type") != "header"
        or not str(header.get("schema", "")).startswith(SCHEMA_NAME + "/")
    ):
        raise DoctorError(f"{name} is not a dora-doctor recording (no {SCHEMA_NAME} header)")
    version = str(header["schema"]).rsplit("/", 1)[-1]
    if not version.isdigit() or int(version) > SCHEMA_VERSION:
        raise DoctorError(
            f"{name} uses recording schema {header['schema']}, newer than this dora-doctor "
            f"reads ({SCHEMA}): upgrade dora-doctor"
        )
    recording = Recording(
        path=path,
        header=header,
        dataflows=[
            dataflow_from_dict(d) for d in header.get("dataflows", []) if isinstance(d, dict)
        ],
    )
    frames: List[Frame] = []
    pending_bad = 0
    for line in lines:
        if not line.strip():
            continue
        value = _loads(line)
        if value is None:
            pending_bad += 1
            continue
        recording.malformed_lines += pending_bad
        pending_bad = 0
        try:
            _add_record(recording, frames, value)
        except (KeyError, TypeError, ValueError, IndexError):
            recording.malformed_lines += 1
    # a single bad line at the very end is the line being written when the writer died
    if pending_bad:
        recording.truncated = True
        recording.malformed_lines += pending_bad - 1
    return recording


def _add_record(recording: Recording, frames: List[Frame], value: Dict[str, Any]) -> None:
    kind = value.get("type")
    if kind == "frames":
        first = int(value["first"])
        del frames[first:]
        frames.extend(Frame.from_list(f) for f in value["frames"])
    elif kind == "stacks":
        recording.stacks.append(
            StackSegment(
                dataflow=str(value["dataflow"]),
                node=str(value["node"]),
                pid=int(value["pid"]),
                start=float(value["start"]),
                end=float(value["end"]),
                ticks=int(value["ticks"]),
                errors=int(value.get("errors", 0)),
                threads=[
                    ThreadTrack(
                        thread_id=int(t["id"]),
                        name=str(t["name"]),
                        spans=[
                            Span(float(a), float(b), _stack(frames, refs))
                            for a, b, refs in t["spans"]
                        ],
                    )
                    for t in value["threads"]
                ],
            )
        )
    elif kind == "gil":
        recording.gil.append(
            GilSegment(
                dataflow=str(value["dataflow"]),
                node=str(value["node"]),
                pid=int(value["pid"]),
                start=float(value["start"]),
                end=float(value["end"]),
                held=int(value["held"]),
                errors=int(value.get("errors", 0)),
                stacks=[
                    GilStack(
                        int(s["thread_id"]),
                        str(s["thread"]),
                        _stack(frames, s["stack"]),
                        int(s["count"]),
                    )
                    for s in value["stacks"]
                ],
            )
        )
    elif kind == "cpu":
        recording.cpu.append(
            CpuSegment(
                dataflow=str(value["dataflow"]),
                node=str(value["node"]),
                pid=int(value["pid"]),
                start=float(value["start"]),
                end=float(value["end"]),
                cpu={int(t[0]): float(t[1]) for t in value["threads"]},
                runnable={int(t[0]): float(t[2]) for t in value["threads"] if len(t) > 2},
            )
        )
    elif kind == "process":
        recording.events.append(
            ProcessEvent(
                dataflow=str(value["dataflow"]),
                node=str(value["node"]),
                pid=int(value["pid"]),
                time=float(value["time"]),
                kind=str(value["kind"]),
                detail=value.get("detail"),
            )
        )
    elif kind == "locals":
        recording.locals.append(_locals_from_dict(value))
    elif kind == "log":
        known = {f.name for f in fields(LogEvent)}
        recording.logs.append(LogEvent(**{k: v for k, v in value.items() if k in known}))
    # unknown record types from a newer minor writer are skipped on purpose


def _stack(frames: List[Frame], refs: List[int]) -> Stack:
    return tuple(frames[i] for i in refs)


def _loads(line: str) -> Optional[Dict[str, Any]]:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _segment_head(
    dataflow: str, node: str, pid: int, start: float, end: float, errors: int
) -> Dict[str, Any]:
    return {
        "dataflow": dataflow,
        "node": node,
        "pid": pid,
        "start": round(start, 6),
        "end": round(end, 6),
        "errors": errors,
    }


def _event_dict(event: ProcessEvent) -> Dict[str, Any]:
    return {
        "dataflow": event.dataflow,
        "node": event.node,
        "pid": event.pid,
        "time": round(event.time, 6),
        "kind": event.kind,
        "detail": event.detail,
    }


def _locals_dict(snapshot: LocalsSnapshot) -> Dict[str, Any]:
    return {
        "type": "locals",
        "dataflow": snapshot.dataflow,
        "node": snapshot.node,
        "pid": snapshot.pid,
        "time": round(snapshot.time, 6),
        "moment": snapshot.moment,
        "error": snapshot.error,
        "threads": [
            {
                "id": t.thread_id,
                "name": t.name,
                "frames": [
                    {
                        "function": f.function,
                        "file": f.file,
                        "line": f.line,
                        "locals": [[v.name, v.arg, v.value] for v in f.variables],
                    }
                    for f in t.frames
                ],
            }
            for t in snapshot.threads
        ],
    }


def _locals_from_dict(value: Dict[str, Any]) -> LocalsSnapshot:
    return LocalsSnapshot(
        dataflow=str(value["dataflow"]),
        node=str(value["node"]),
        pid=int(value["pid"]),
        time=float(value["time"]),
        moment=str(value["moment"]),
        error=value.get("error"),
        threads=[
            ThreadLocals(
                thread_id=int(t["id"]),
                name=str(t["name"]),
                frames=[
                    FrameLocals(
                        function=str(f["function"]),
                        file=str(f["file"]),
                        line=int(f["line"]),
                        variables=[
                            LocalVar(str(name), bool(arg), str(val))
                            for name, arg, val in f["locals"]
                        ],
                    )
                    for f in t["frames"]
                ],
            )
            for t in value["threads"]
        ],
    )


def dataflow_to_dict(dataflow: Dataflow) -> Dict[str, Any]:
    return {
        "uuid": dataflow.uuid,
        "name": dataflow.name,
        "status": dataflow.status,
        "nodes": [
            {
                "id": n.id,
                "pid": n.pid,
                "sample_pid": n.sample_pid,
                "python": n.python,
                "python_version": n.python_version,
                "status": n.status,
                "machine": n.machine,
                "skip_reason": n.skip_reason,
                **_process_facts(n),
            }
            for n in dataflow.nodes
        ],
    }


def dataflow_from_dict(value: Dict[str, Any]) -> Dataflow:
    return Dataflow(
        uuid=str(value.get("uuid")),
        name=value.get("name"),
        status=value.get("status"),
        nodes=[
            NodeProcess(
                id=str(n.get("id")),
                dataflow=str(value.get("uuid")),
                pid=n.get("pid"),
                sample_pid=n.get("sample_pid"),
                python=bool(n.get("python")),
                python_version=n.get("python_version"),
                status=n.get("status"),
                machine=n.get("machine"),
                skip_reason=n.get("skip_reason"),
                catches_sigterm=_typed(n.get("catches_sigterm"), bool),
                python_prefix=_typed(n.get("python_prefix"), str),
                started=_typed(n.get("started"), float),
            )
            for n in value.get("nodes", [])
            if isinstance(n, dict)
        ],
    )


def _process_facts(node: NodeProcess) -> Dict[str, Any]:
    """What discovery read of the process (SigCgt, prefix, start), only when it was read."""
    facts = {
        "catches_sigterm": node.catches_sigterm,
        "python_prefix": node.python_prefix,
        "started": node.started,
    }
    return {k: v for k, v in facts.items() if v is not None}


def _typed(value: Any, kind: type) -> Any:
    """A header value from an untrusted file, or None when it is not of the expected type."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value if isinstance(value, kind) else None
