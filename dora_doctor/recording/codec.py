"""One encode and one decode per record type: the only place that knows the line format.

The writer, the reader and ``merge`` all go through here, so the format is written down
once. Every decoder checks every field it reads, type and range, before it builds anything:
a recording is input from another machine, maybe damaged, maybe crafted. A NaN or 1e308 as
a time, a 400-digit integer, a time given as a string, a negative or out-of-range frame index
or a negative count is refused with :class:`Invalid`, and the reader skips that record whole
and counts it, so the analysis only ever sees values it can compute with.

Bounds are far beyond anything real (a time is Unix seconds before the year 2286, a count
below 10⁹) and only there so that arithmetic on them stays finite.
"""

from __future__ import annotations

import json
import math
import platform
import re
import sys
import time
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, TypeVar

from dora_doctor import __version__
from dora_doctor.errors import DoctorError
from dora_doctor.logs.events import LogEvent
from dora_doctor.model import (
    CpuSegment,
    Dataflow,
    DumpFrame,
    DumpThread,
    Frame,
    FrameLocals,
    GilSegment,
    GilStack,
    LastDump,
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
from dora_doctor.recording.model import SCHEMA, SCHEMA_NAME, SCHEMA_VERSION, Record

MAX_TIME = 1e10  # seconds: every time is Unix wall clock (or monotonic) seconds, every duration
MAX_COUNT = 10**9  # samples, ticks, errors
MAX_THREAD_NAME = 64  # the kernel's are 15 bytes; anything longer is not one
MAX_ID = 2**64  # pids, thread ids (py-spy may report a pthread id), exit codes, signals
MAX_LINE = 2**31  # a source line number (py-spy gives 0, maybe -1, when it does not know)
MAX_RATE = 1e6  # samples per second
MAX_MAP_ITEMS = 100  # entries of a name -> name map in the header (a node's operators)
MAX_INT_DIGITS = 30  # a JSON integer longer than this is damage, refused while parsing

T = TypeVar("T")


class Invalid(ValueError):
    """A record (or header field) that breaks the format; the message names the field only,
    never the value, so it is safe to print."""


# --- checked reads of single values --------------------------------------------------------


def _int(value: Any, name: str, low: int = 0, high: int = MAX_ID) -> int:
    # type() rather than isinstance(): a bool is not a count, and this runs per value
    if type(value) is not int:
        raise Invalid(f"{name} is not an integer")
    if not low <= value <= high:
        raise Invalid(f"{name} is out of range")
    return value


def _number(value: Any, name: str, high: float = MAX_TIME) -> float:
    """A finite, non-negative number up to ``high``: every time, duration and share."""
    kind = type(value)
    if kind is float:
        number: float = value
    elif kind is int and -MAX_ID <= value <= MAX_ID:
        number = float(value)
    elif kind is int:
        raise Invalid(f"{name} is out of range")
    else:
        raise Invalid(f"{name} is not a number")
    if not 0.0 <= number <= high:  # also false for NaN; infinity is above any high
        raise Invalid(f"{name} is out of range")
    return number


def _str(value: Any, name: str) -> str:
    if type(value) is not str:
        raise Invalid(f"{name} is not a string")
    return value


def _opt_str(value: Any, name: str) -> Optional[str]:
    return None if value is None else _str(value, name)


def _list(value: Any, name: str) -> List[Any]:
    if type(value) is not list:
        raise Invalid(f"{name} is not a list")
    return value


def _dict(value: Any, name: str) -> Dict[str, Any]:
    if type(value) is not dict:
        raise Invalid(f"{name} is not an object")
    return value


def _field(value: Dict[str, Any], name: str) -> Any:
    if name not in value:
        raise Invalid(f"{name} is missing")
    return value[name]


def _interval(value: Dict[str, Any]) -> Tuple[float, float]:
    start = _number(_field(value, "start"), "start")
    end = _number(_field(value, "end"), "end")
    if end < start:
        raise Invalid("end is before start")
    return start, end


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{name} is not true or false")
    return value


# --- dataclasses decoded by their fields (tolerant of fields another version adds) ---------

_SCALARS: Dict[str, Callable[[Any, str], Any]] = {
    "str": _str,
    "int": lambda v, n: _int(v, n, -MAX_ID),
    "float": _number,
    "bool": _bool,
}


def _by_annotation(annotation: str, value: Any, name: str) -> Any:
    """Check ``value`` against a field's annotation (a string under postponed evaluation).

    Raises :class:`LookupError` for an annotation this table cannot check, so the caller
    keeps the field's default rather than trusting an unchecked value.
    """
    text = annotation.replace(" ", "")
    if text.startswith("Optional[") and text.endswith("]"):
        return None if value is None else _by_annotation(text[9:-1], value, name)
    if text in _SCALARS:
        return _SCALARS[text](value, name)
    if text == "Dict[str,str]":
        items = _dict(value, name)
        if len(items) > MAX_MAP_ITEMS:
            raise Invalid(f"{name} has too many entries")
        return {_str(k, name): _str(v, name) for k, v in items.items()}
    for outer, build in (("List[", list), ("Tuple[", tuple), ("FrozenSet[", frozenset)):
        if text.startswith(outer) and text.endswith("]"):
            inner = text[len(outer) : -1]
            inner = inner[:-4] if inner.endswith(",...") else inner
            if inner in _SCALARS:
                return build(_SCALARS[inner](v, name) for v in _list(value, name))
    raise LookupError(annotation)


def _decode_fields(cls: Type[T], value: Any, name: str, given: Dict[str, Any]) -> T:
    """An instance of the dataclass ``cls`` from ``value``'s keys named like its fields.

    Keys it does not know are ignored; fields ``given`` by the caller are not read. A field
    whose type this module cannot check keeps its default (a newer dora-doctor's optional
    field read by an older one).
    """
    data = _dict(value, name)
    kwargs = dict(given)
    for spec in fields(cls):  # type: ignore[arg-type]
        if spec.name in given:
            continue
        required = spec.default is MISSING and spec.default_factory is MISSING
        if spec.name not in data:
            if required:
                raise Invalid(f"{name}.{spec.name} is missing")
            continue
        try:
            kwargs[spec.name] = _by_annotation(_annotation(spec.type), data[spec.name], spec.name)
        except LookupError:
            if required:
                raise Invalid(f"{name}.{spec.name} cannot be read") from None
    return cls(**kwargs)


def _annotation(annotation: Any) -> str:
    """A field's annotation as text, whether or not its module postpones annotations."""
    if isinstance(annotation, str):
        return annotation.replace("typing.", "")
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _encode_fields(obj: Any, skip: Sequence[str] = ()) -> Dict[str, Any]:
    assert is_dataclass(obj)
    return {f.name: _jsonable(getattr(obj, f.name)) for f in fields(obj) if f.name not in skip}


# --- header and dataflows ------------------------------------------------------------------


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
        "dataflows": [encode_dataflow(df) for df in dataflows],
    }


def encode_node(node: NodeProcess) -> Dict[str, Any]:
    """Every field of the node but its dataflow (the dataflow it is listed under)."""
    return _encode_fields(node, skip=("dataflow",))


def decode_node(value: Any, dataflow: str) -> NodeProcess:
    node = _decode_fields(NodeProcess, value, "node", {"dataflow": dataflow})
    for name in ("pid", "sample_pid"):
        if getattr(node, name) is not None:
            _int(getattr(node, name), name, 0)
    return node


def encode_dataflow(dataflow: Dataflow) -> Dict[str, Any]:
    return {
        "uuid": dataflow.uuid,
        "name": dataflow.name,
        "status": dataflow.status,
        "nodes": [encode_node(n) for n in dataflow.nodes],
    }


def decode_dataflow(value: Any, problems: List[str]) -> Dataflow:
    """A dataflow; a node that breaks the format is left out and named in ``problems``."""
    data = _dict(value, "dataflow")
    uuid = _str(_field(data, "uuid"), "dataflow.uuid")
    dataflow = Dataflow(
        uuid=uuid,
        name=_opt_str(data.get("name"), "dataflow.name"),
        status=_opt_str(data.get("status"), "dataflow.status"),
    )
    seen = set()
    for node in _list(data.get("nodes", []), "dataflow.nodes"):
        try:
            decoded = decode_node(node, uuid)
        except Invalid as err:
            problems.append(f"header: a node of a dataflow: {err}")
            continue
        if decoded.id in seen:
            problems.append("header: a node listed twice in one dataflow")
            continue
        seen.add(decoded.id)
        dataflow.nodes.append(decoded)
    return dataflow


_SCHEMA = re.compile(re.escape(SCHEMA_NAME) + r"/([0-9]{1,9})", re.ASCII)


def check_schema(header: Any, name: str) -> Dict[str, Any]:
    """The header line, if it is one this version reads; else the one-line reason why not."""
    if not isinstance(header, dict) or header.get("type") != "header":
        raise DoctorError(f"{name} is not a dora-doctor recording (no {SCHEMA_NAME} header)")
    schema = header.get("schema")
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_NAME + "/"):
        raise DoctorError(f"{name} is not a dora-doctor recording (no {SCHEMA_NAME} header)")
    match = _SCHEMA.fullmatch(schema)
    if match is None or int(match.group(1)) < 1:
        raise DoctorError(
            f"{name} is damaged: its schema {quote(schema)} is not {SCHEMA_NAME}/<version>"
        )
    if int(match.group(1)) > SCHEMA_VERSION:
        raise DoctorError(
            f"{name} uses recording schema {schema}, newer than this dora-doctor "
            f"reads ({SCHEMA}): upgrade dora-doctor"
        )
    return header


def quote(text: str, limit: int = 40) -> str:
    """Untrusted text in an error line: JSON-quoted (every control character escaped), cut."""
    quoted = json.dumps(text[:limit])
    return quoted if len(text) <= limit else quoted[:-1] + '…"'


def _key(key: str) -> str:
    """An unknown header key in a reason: the key itself if it is plain, else a stand-in."""
    return key if key.isidentifier() and len(key) <= 40 else "a key"


def _finite_map(value: Any, name: str) -> Dict[str, float]:
    data = _dict(value, name)
    return {str(k): _number(v, f"{name}.{k}") for k, v in data.items()}


def _text_map(value: Any, name: str) -> Dict[str, Optional[str]]:
    data = _dict(value, name)
    return {str(k): _opt_str(v, name) for k, v in data.items()}


def _sampler(value: Any, name: str) -> Dict[str, Any]:
    data = _dict(value, name)
    checks: Dict[str, Callable[[Any, str], Any]] = {
        "rate": lambda v, n: _number(v, n, MAX_RATE),
        "segment_s": _number,
        "tool": _str,
        "nonblocking": _bool,
        "locals": _bool,
    }
    checked = {}
    for key, item in data.items():
        check = checks.get(key)
        if check is not None:
            checked[key] = check(item, f"{name}.{key}")
        elif not isinstance(item, (list, dict)) and plain(item):
            checked[key] = item
    if checked.get("rate") == 0:
        raise Invalid(f"{name}.rate is out of range")
    return checked


def _merged_from(value: Any, name: str) -> List[Dict[str, Any]]:
    if not plain(value):
        raise Invalid(f"{name} holds values that are not plain JSON")
    return [_dict(item, name) for item in _list(value, name)]


# header key -> its check; a key that fails is dropped (and counted), the rest of the header
# stays usable
_HEADER_FIELDS: Dict[str, Callable[[Any, str], Any]] = {
    "tool_version": _opt_str,
    "dora_version": _opt_str,
    "created": _opt_str,
    "clocks": _finite_map,
    "host": _text_map,
    "sampler": _sampler,
    "logs": _text_map,
    "ended_because": _opt_str,
    "merged_from": _merged_from,
}


def decode_header(value: Any, name: str) -> Tuple[Dict[str, Any], List[Dataflow], List[str]]:
    """The checked header, its dataflows, and what had to be dropped from it (as reasons).

    Raises :class:`DoctorError` when the line is not a header of a schema this version reads.
    """
    header = dict(check_schema(value, name))
    problems: List[str] = []
    for key in [k for k, v in header.items() if k not in _HEADER_FIELDS and not plain(v)]:
        if key != "dataflows":
            problems.append(f"header: {_key(key)} holds values that are not plain JSON")
            del header[key]
    for key, check in _HEADER_FIELDS.items():
        if key in header:
            try:
                header[key] = check(header[key], key)
            except Invalid as err:
                problems.append(f"header: {err}")
                del header[key]
    dataflows: List[Dataflow] = []
    try:
        entries = _list(header.get("dataflows", []), "dataflows")
    except Invalid as err:
        problems.append(f"header: {err}")
        entries = []
    for entry in entries:
        try:
            dataflows.append(decode_dataflow(entry, problems))
        except Invalid as err:
            problems.append(f"header: {err}")
    header["dataflows"] = [encode_dataflow(d) for d in dataflows]
    return header, dataflows, problems


# --- frames --------------------------------------------------------------------------------


def encode_frames(first: int, frames: Sequence[Frame]) -> Dict[str, Any]:
    return {"type": "frames", "first": first, "frames": [f.to_list() for f in frames]}


def decode_frames(value: Dict[str, Any], table: List[Frame]) -> None:
    """Extend the frame table; checked whole before the table changes."""
    first = _int(_field(value, "first"), "first", 0, len(table))
    new = []
    for item in _list(_field(value, "frames"), "frames"):
        entry = _list(item, "frame")
        if len(entry) != 3:
            raise Invalid("a frame is not [function, file, line]")
        new.append(
            Frame(
                _str(entry[0], "frame.function"),
                _str(entry[1], "frame.file"),
                _int(entry[2], "frame.line", -MAX_LINE, MAX_LINE),
            )
        )
    del table[first:]
    table.extend(new)


def _stack(refs: Any, table: Sequence[Frame]) -> Stack:
    indexes = _list(refs, "stack")
    return tuple(table[_int(i, "frame index", 0, len(table) - 1)] for i in indexes)


Refs = Callable[[Stack], List[int]]


# --- sample records ------------------------------------------------------------------------


def _who(value: Dict[str, Any]) -> Tuple[str, str, int]:
    """The dataflow, node and pid every record but ``frames`` and ``log`` starts with."""
    return (
        _str(_field(value, "dataflow"), "dataflow"),
        _str(_field(value, "node"), "node"),
        _int(_field(value, "pid"), "pid"),
    )


def _head(value: Dict[str, Any]) -> Tuple[str, str, int, float, float]:
    return (*_who(value), *_interval(value))


def _encode_head(
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


def encode_stacks(seg: StackSegment, refs: Refs) -> Dict[str, Any]:
    return {
        "type": "stacks",
        **_encode_head(seg.dataflow, seg.node, seg.pid, seg.start, seg.end, seg.errors),
        "ticks": seg.ticks,
        "threads": [
            {
                "id": t.thread_id,
                "name": t.name,
                "spans": [[round(s.start, 6), round(s.end, 6), refs(s.stack)] for s in t.spans],
            }
            for t in seg.threads
        ],
    }


def decode_stacks(value: Dict[str, Any], table: Sequence[Frame]) -> StackSegment:
    dataflow, node, pid, start, end = _head(value)
    threads = []
    for item in _list(_field(value, "threads"), "threads"):
        thread = _dict(item, "thread")
        spans = []
        for span in _list(_field(thread, "spans"), "spans"):
            entry = _list(span, "span")
            if len(entry) != 3:
                raise Invalid("a span is not [start, end, stack]")
            a, b = _number(entry[0], "span start"), _number(entry[1], "span end")
            if b < a:
                raise Invalid("a span ends before it starts")
            spans.append(Span(a, b, _stack(entry[2], table)))
        threads.append(
            ThreadTrack(
                _int(_field(thread, "id"), "thread id"),
                _str(_field(thread, "name"), "thread name"),
                spans,
            )
        )
    return StackSegment(
        dataflow=dataflow,
        node=node,
        pid=pid,
        start=start,
        end=end,
        ticks=_int(_field(value, "ticks"), "ticks", 0, MAX_COUNT),
        errors=_int(value.get("errors", 0), "errors", 0, MAX_COUNT),
        threads=threads,
    )


def encode_gil(seg: GilSegment, refs: Refs) -> Dict[str, Any]:
    return {
        "type": "gil",
        **_encode_head(seg.dataflow, seg.node, seg.pid, seg.start, seg.end, seg.errors),
        "held": seg.held,
        "stacks": [
            {
                "thread_id": s.thread_id,
                "thread": s.thread,
                "stack": refs(s.stack),
                "count": s.count,
            }
            for s in seg.stacks
        ],
    }


def decode_gil(value: Dict[str, Any], table: Sequence[Frame]) -> GilSegment:
    dataflow, node, pid, start, end = _head(value)
    stacks = []
    for item in _list(_field(value, "stacks"), "stacks"):
        entry = _dict(item, "gil stack")
        stacks.append(
            GilStack(
                _int(_field(entry, "thread_id"), "thread_id"),
                _str(_field(entry, "thread"), "thread"),
                _stack(_field(entry, "stack"), table),
                _int(_field(entry, "count"), "count", 0, MAX_COUNT),
            )
        )
    return GilSegment(
        dataflow=dataflow,
        node=node,
        pid=pid,
        start=start,
        end=end,
        held=_int(_field(value, "held"), "held", 0, MAX_COUNT),
        errors=_int(value.get("errors", 0), "errors", 0, MAX_COUNT),
        stacks=stacks,
    )


def encode_cpu(seg: CpuSegment) -> Dict[str, Any]:
    return {
        "type": "cpu",
        "dataflow": seg.dataflow,
        "node": seg.node,
        "pid": seg.pid,
        "start": round(seg.start, 6),
        "end": round(seg.end, 6),
        "threads": [
            [tid, seconds, round(seg.runnable.get(tid, 0.0), 3)] for tid, seconds in seg.cpu.items()
        ],
        **({"names": [[tid, name] for tid, name in seg.names.items()]} if seg.names else {}),
    }


def decode_cpu(value: Dict[str, Any], table: Sequence[Frame]) -> CpuSegment:
    dataflow, node, pid, start, end = _head(value)
    cpu: Dict[int, float] = {}
    runnable: Dict[int, float] = {}
    for item in _list(_field(value, "threads"), "threads"):
        entry = _list(item, "cpu thread")
        if len(entry) not in (2, 3):
            raise Invalid("a cpu thread is not [id, seconds, runnable]")
        tid = _int(entry[0], "cpu thread id")
        cpu[tid] = _number(entry[1], "cpu seconds")
        if len(entry) > 2:
            runnable[tid] = _number(entry[2], "runnable share", 1.0)
    names: Dict[int, str] = {}
    for item in _list(value.get("names", []), "cpu names"):  # since dora-doctor 0.1 (issue 13)
        entry = _list(item, "cpu thread name")
        if len(entry) != 2:
            raise Invalid("a cpu thread name is not [id, name]")
        names[_int(entry[0], "cpu thread id")] = _str(entry[1], "thread name")[:MAX_THREAD_NAME]
    return CpuSegment(dataflow, node, pid, start, end, cpu, runnable, names)


# --- events --------------------------------------------------------------------------------


def encode_process(event: ProcessEvent) -> Dict[str, Any]:
    return {
        "type": "process",
        "dataflow": event.dataflow,
        "node": event.node,
        "pid": event.pid,
        "time": round(event.time, 6),
        "kind": event.kind,
        "detail": event.detail,
    }


def decode_process(value: Dict[str, Any], table: Sequence[Frame]) -> ProcessEvent:
    dataflow, node, pid = _who(value)
    return ProcessEvent(
        dataflow=dataflow,
        node=node,
        pid=pid,
        time=_number(_field(value, "time"), "time"),
        kind=_str(_field(value, "kind"), "kind"),
        detail=_opt_str(value.get("detail"), "detail"),
    )


def encode_log(event: LogEvent) -> Dict[str, Any]:
    return {"type": "log", **_encode_fields(event)}


def decode_log(value: Dict[str, Any], table: Sequence[Frame]) -> LogEvent:
    return _decode_fields(LogEvent, value, "log", {})


def encode_locals(snapshot: LocalsSnapshot) -> Dict[str, Any]:
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


def _local_var(value: Any) -> LocalVar:
    entry = _list(value, "local")
    if len(entry) != 3:
        raise Invalid("a local is not [name, is_argument, value]")
    return LocalVar(
        _str(entry[0], "local name"), _bool(entry[1], "local argument"), _str(entry[2], "value")
    )


def _frame_locals(value: Any) -> FrameLocals:
    frame = _dict(value, "locals frame")
    return FrameLocals(
        function=_str(_field(frame, "function"), "function"),
        file=_str(_field(frame, "file"), "file"),
        line=_int(_field(frame, "line"), "line", -MAX_LINE, MAX_LINE),
        variables=[_local_var(v) for v in _list(_field(frame, "locals"), "locals")],
    )


def decode_locals(value: Dict[str, Any], table: Sequence[Frame]) -> LocalsSnapshot:
    threads = []
    for item in _list(_field(value, "threads"), "threads"):
        thread = _dict(item, "thread")
        threads.append(
            ThreadLocals(
                thread_id=_int(_field(thread, "id"), "thread id"),
                name=_str(_field(thread, "name"), "thread name"),
                frames=[_frame_locals(f) for f in _list(_field(thread, "frames"), "frames")],
            )
        )
    dataflow, node, pid = _who(value)
    return LocalsSnapshot(
        dataflow=dataflow,
        node=node,
        pid=pid,
        time=_number(_field(value, "time"), "time"),
        moment=_str(_field(value, "moment"), "moment"),
        threads=threads,
        error=_opt_str(value.get("error"), "error"),
    )


def encode_lastdump(dump: LastDump) -> Dict[str, Any]:
    return {
        "type": "lastdump",
        "dataflow": dump.dataflow,
        "node": dump.node,
        "pid": dump.pid,
        "time": round(dump.time, 6),
        "before": dump.before,
        "error": dump.error,
        "threads": [
            {
                "id": t.thread_id,
                "name": t.name,
                "active": t.active,
                "owns_gil": t.owns_gil,
                "frames": [[f.function, f.file, f.line, f.native] for f in t.frames],
            }
            for t in dump.threads
        ],
    }


def _dump_frame(value: Any) -> DumpFrame:
    entry = _list(value, "dump frame")
    if len(entry) != 4:
        raise Invalid("a dump frame is not [function, file, line, native]")
    return DumpFrame(
        _str(entry[0], "function"),
        _str(entry[1], "file"),
        _int(entry[2], "line", -MAX_LINE, MAX_LINE),
        _bool(entry[3], "native"),
    )


def decode_lastdump(value: Dict[str, Any], table: Sequence[Frame]) -> LastDump:
    threads = []
    for item in _list(_field(value, "threads"), "threads"):
        thread = _dict(item, "thread")
        threads.append(
            DumpThread(
                thread_id=_int(_field(thread, "id"), "thread id"),
                name=_str(_field(thread, "name"), "thread name"),
                active=_bool(_field(thread, "active"), "active"),
                owns_gil=_bool(_field(thread, "owns_gil"), "owns_gil"),
                frames=[_dump_frame(f) for f in _list(_field(thread, "frames"), "frames")],
            )
        )
    dataflow, node, pid = _who(value)
    return LastDump(
        dataflow=dataflow,
        node=node,
        pid=pid,
        time=_number(_field(value, "time"), "time"),
        before=_str(_field(value, "before"), "before"),
        threads=threads,
        error=_opt_str(value.get("error"), "error"),
    )


# --- dispatch ------------------------------------------------------------------------------

DECODERS: Dict[str, Callable[[Dict[str, Any], Sequence[Frame]], Record]] = {
    "stacks": decode_stacks,
    "gil": decode_gil,
    "cpu": decode_cpu,
    "process": decode_process,
    "locals": decode_locals,
    "lastdump": decode_lastdump,
    "log": decode_log,
}


def decode_record(value: Dict[str, Any], table: List[Frame]) -> Optional[Record]:
    """The record on one line, or None for a ``frames`` line (it only extends ``table``) and
    for a record type this version does not know (a newer minor writer's: skipped on
    purpose, not damage)."""
    kind = value.get("type")
    if kind == "frames":
        decode_frames(value, table)
        return None
    decoder = DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        if kind == "header":
            raise Invalid("a second header")
        return None
    return decoder(value, table)


def encode_record(record: Record, refs: Refs) -> Dict[str, Any]:
    """The line for one record; ``refs`` maps a stack to indexes in the writer's frame table."""
    if isinstance(record, StackSegment):
        return encode_stacks(record, refs)
    if isinstance(record, GilSegment):
        return encode_gil(record, refs)
    if isinstance(record, CpuSegment):
        return encode_cpu(record)
    if isinstance(record, LogEvent):
        return encode_log(record)
    if isinstance(record, LocalsSnapshot):
        return encode_locals(record)
    if isinstance(record, LastDump):
        return encode_lastdump(record)
    return encode_process(record)


def stacks_of(record: Record) -> List[Stack]:
    """The stacks a record refers to (their frames must be in the table before it)."""
    if isinstance(record, StackSegment):
        return [s.stack for t in record.threads for s in t.spans]
    if isinstance(record, GilSegment):
        return [s.stack for s in record.stacks]
    return []


class HugeInt:
    """Stands in for a JSON integer too long to be a real value, so that the field holding it
    is refused by its check (with its name) rather than the whole line as not JSON."""

    def __repr__(self) -> str:
        return "<huge integer>"


def loads(line: str) -> Optional[Dict[str, Any]]:
    """One line as a JSON object, or None. Nesting too deep for the parser is damage, not a
    crash. Python ≥ 3.11 refuses integers of more than 4300 digits itself (a malformed line)
    and the field checks refuse the shorter ones; older Pythons would convert any length, in
    quadratic time, so there an integer longer than any real value is kept as a
    :class:`HugeInt` for its field's check to refuse."""
    try:
        if _CHECK_INTS:
            value = json.loads(line, parse_int=_parse_int)
        else:
            value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


_CHECK_INTS = sys.version_info < (3, 11)


def _parse_int(text: str) -> Any:
    return HugeInt() if len(text.lstrip("-")) > MAX_INT_DIGITS else int(text)


def plain(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is JSON this module can write back as it is: finite numbers, no
    :class:`HugeInt`, nesting within reason. Header keys this version does not know are kept
    only if they are."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth > 20:
        return False
    if isinstance(value, list):
        return all(plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(plain(v, depth + 1) for v in value.values())
    return False


def dumps(value: Dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))
