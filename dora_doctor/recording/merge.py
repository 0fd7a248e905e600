"""Merge recordings of one dataflow made on several machines into one recording.

py-spy can only read processes on its own machine, so a dataflow spread over machines is
sampled by one ``inspect --machine ID --record ID.ddrec`` per machine. Each file is a whole
recording of its own: its own frame table, its own header, its nodes' samples. Merging
puts every record of every file into one timeline by wall clock (the clocks of the machines
are assumed to agree, as dora's own logs assume), renumbers the frames into one table, and
joins the headers, so ``report`` reads the result like any recording made on one machine.

Records are merged as JSON lines, not through :mod:`~dora_doctor.recording`'s objects, so a
record type this module does not know is carried over as it is; only ``frames``, ``stacks``
and ``gil`` refer to the frame table and are rewritten.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Sequence, Set, Tuple

from dora_doctor.errors import DoctorError
from dora_doctor.recording.jsonl import open_recording, parse_recording

FrameKey = Tuple[Any, ...]
_SAMPLES = ("stacks", "gil", "cpu", "locals")


@dataclass
class _Input:
    path: Path
    header: Dict[str, Any]
    records: List[Dict[str, Any]] = field(default_factory=list)
    malformed: int = 0

    @property
    def sampled(self) -> Set[Tuple[str, str]]:
        """(dataflow, node) pairs this recording sampled: its samples are the ones kept."""
        return {
            (str(d.get("uuid")), str(n.get("id")))
            for d in self.header.get("dataflows", [])
            for n in d.get("nodes", [])
            if n.get("sample_pid")
        }


@dataclass
class MergeResult:
    output: Path
    inputs: List[Path]
    records: int
    dataflow: str
    machines: Dict[str, List[str]]  # machine id (or "?") → nodes sampled there
    duplicates: int = 0  # identical records found in several inputs (the same log line)


def merge(inputs: Sequence[Path], output: Path) -> MergeResult:
    """Merge ``inputs`` into the new file ``output`` (never overwritten)."""
    if len(inputs) < 2:
        raise DoctorError("merge needs two or more recordings")
    if Path(output).exists():
        raise DoctorError(f"{output} already exists: dora-doctor does not overwrite files")
    loaded = [_load(Path(path)) for path in inputs]
    dataflow = _same_dataflow(loaded)
    _no_double_sampling(loaded)
    header = _merged_header(loaded)
    ordered, duplicates = _timeline(loaded)
    try:
        handle: IO[str] = open(output, "x", encoding="utf-8")  # noqa: SIM115
    except FileExistsError as err:
        raise DoctorError(f"{output} already exists: dora-doctor does not overwrite files") from err
    except OSError as err:
        raise DoctorError(f"cannot create {output}: {err.strerror}") from err
    with handle:
        _write(handle, header, ordered)
    return MergeResult(
        output=Path(output),
        inputs=[Path(p) for p in inputs],
        records=len(ordered),
        dataflow=dataflow,
        machines=_machines(header),
        duplicates=duplicates,
    )


def _load(path: Path) -> _Input:
    """Every record of one recording, its frame references resolved to frames."""
    with open_recording(path) as handle:
        first = handle.readline()
        # the header checks of the reader: not a recording, or a newer schema, is refused
        header = parse_recording(iter([first]), path).header
        loaded = _Input(path, header)
        frames: List[FrameKey] = []
        for line in handle:
            if not line.strip():
                continue
            try:
                value = json.loads(line)
                if isinstance(value, dict):
                    _resolve(value, frames, loaded)
                    continue
            except (ValueError, KeyError, TypeError, IndexError):
                pass
            loaded.malformed += 1  # a cut-off last line, as the reader tolerates
    return loaded


def _resolve(value: Dict[str, Any], frames: List[FrameKey], into: _Input) -> None:
    kind = value.get("type")
    if kind == "frames":
        first = int(value["first"])
        del frames[first:]
        frames.extend(tuple(f) for f in value["frames"])
        return
    if kind == "stacks":
        for thread in value["threads"]:
            thread["spans"] = [[a, b, [frames[i] for i in refs]] for a, b, refs in thread["spans"]]
    elif kind == "gil":
        for stack in value["stacks"]:
            stack["stack"] = [frames[i] for i in stack["stack"]]
    into.records.append(value)


def _same_dataflow(loaded: List[_Input]) -> str:
    """Recordings of different dataflows do not make one timeline: refused."""

    def dataflows(item: _Input) -> Dict[str, str]:
        return {
            str(d.get("uuid")): str(d.get("name") or d.get("uuid"))
            for d in item.header.get("dataflows", [])
        }

    first = dataflows(loaded[0])
    for other in loaded[1:]:
        theirs = dataflows(other)
        if set(theirs) != set(first):
            raise DoctorError(
                f"{other.path} records dataflow {_names(theirs)} but {loaded[0].path} records "
                f"{_names(first)}: merge only recordings of the same dataflow"
            )
    return _names(first)


def _names(dataflows: Dict[str, str]) -> str:
    return (
        ", ".join(
            f"{name} ({uuid})" if name != uuid else uuid for uuid, name in sorted(dataflows.items())
        )
        or "none"
    )


def _no_double_sampling(loaded: List[_Input]) -> None:
    """Two recordings sampling one node at the same time would count its samples twice."""
    for index, one in enumerate(loaded):
        for other in loaded[index + 1 :]:
            for key in sorted(one.sampled & other.sampled):
                if _overlap(_span(one, key), _span(other, key)):
                    raise DoctorError(
                        f"node {key[1]} was sampled in both {one.path} and {other.path} at the "
                        "same time: merge recordings made with `inspect --machine ID`, one per "
                        "machine"
                    )


def _span(item: _Input, key: Tuple[str, str]) -> Optional[Tuple[float, float]]:
    times = [
        (float(r["start"]), float(r["end"]))
        for r in item.records
        if r.get("type") == "stacks" and (r.get("dataflow"), r.get("node")) == key
    ]
    return (min(t[0] for t in times), max(t[1] for t in times)) if times else None


def _overlap(a: Optional[Tuple[float, float]], b: Optional[Tuple[float, float]]) -> bool:
    return a is not None and b is not None and a[0] < b[1] and b[0] < a[1]


def _merged_header(loaded: List[_Input]) -> Dict[str, Any]:
    """The earliest recording's header, with every node taken from where it was sampled."""
    by_start = sorted(loaded, key=lambda item: _wall(item.header))
    header = copy.deepcopy(by_start[0].header)
    header["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    header["dataflows"] = [_merged_dataflow(d, loaded) for d in header.get("dataflows", [])]
    logs: Dict[str, Any] = {}
    for item in by_start:
        for source, path in (item.header.get("logs") or {}).items():
            if path and path not in str(logs.get(source, "")).split("; "):
                logs[source] = f"{logs[source]}; {path}" if logs.get(source) else path
    header["logs"] = logs
    header["merged_from"] = [
        {
            "path": str(item.path),
            "created": item.header.get("created"),
            "host": item.header.get("host"),
            "sampler": item.header.get("sampler"),
            "sampled": sorted(node for _, node in item.sampled),
        }
        for item in loaded
    ]
    return header


def _wall(header: Dict[str, Any]) -> float:
    clocks = header.get("clocks")
    wall = clocks.get("wall") if isinstance(clocks, dict) else None
    return float(wall) if isinstance(wall, (int, float)) else float("inf")


def _merged_dataflow(dataflow: Dict[str, Any], loaded: List[_Input]) -> Dict[str, Any]:
    entries: Dict[str, List[Dict[str, Any]]] = {}
    for item in loaded:
        for other in item.header.get("dataflows", []):
            if other.get("uuid") != dataflow.get("uuid"):
                continue
            for node in other.get("nodes", []):
                entries.setdefault(str(node.get("id")), []).append(node)
    nodes = []
    for versions in entries.values():
        # the sampled entry knows the interpreter; any entry may know the machine
        sampled = [n for n in versions if n.get("sample_pid")]
        best = copy.deepcopy(sampled[0] if sampled else versions[0])
        best["machine"] = best.get("machine") or next(
            (n.get("machine") for n in versions if n.get("machine")), None
        )
        nodes.append(best)
    merged = dict(dataflow)
    merged["nodes"] = nodes
    return merged


def _timeline(loaded: List[_Input]) -> Tuple[List[Dict[str, Any]], int]:
    """Every record of every input in wall-clock order; identical records once.

    A node's samples come only from the recordings that sampled it, and a record without a
    time of its own keeps its place after the record before it in its file.
    """
    keyed: List[Tuple[float, int, int, Dict[str, Any]]] = []
    seen: Set[str] = set()
    duplicates = 0
    for index, item in enumerate(loaded):
        sampled = item.sampled
        last = float("-inf")
        for order, record in enumerate(item.records):
            kind = record.get("type")
            key = (record.get("dataflow"), record.get("node"))
            if kind in _SAMPLES and sampled and key not in sampled:
                continue
            if kind not in ("stacks", "gil"):
                text = json.dumps(record, sort_keys=True)
                if text in seen:
                    duplicates += 1
                    continue
                seen.add(text)
            moment = _time_of(record)
            last = moment if moment is not None else last
            keyed.append((last, index, order, record))
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed], duplicates


def _time_of(record: Dict[str, Any]) -> Optional[float]:
    for name in ("start", "time"):
        value = record.get(name)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _write(handle: IO[str], header: Dict[str, Any], records: List[Dict[str, Any]]) -> None:
    """The header, then the records, each new frame in a ``frames`` record before its use."""
    table: Dict[FrameKey, int] = {}

    def line(value: Dict[str, Any]) -> None:
        handle.write(json.dumps(value, separators=(",", ":")) + "\n")

    def refs(stack: List[FrameKey]) -> List[int]:
        return [table[frame] for frame in stack]

    line(header)
    for record in records:
        kind = record.get("type")
        if kind == "stacks":
            stacks = [s[2] for t in record["threads"] for s in t["spans"]]
        elif kind == "gil":
            stacks = [s["stack"] for s in record["stacks"]]
        else:
            line(record)
            continue
        new: List[List[Any]] = []
        for stack in stacks:
            for frame in stack:
                if frame not in table:
                    table[frame] = len(table)
                    new.append(list(frame))
        if new:
            line({"type": "frames", "first": len(table) - len(new), "frames": new})
        out = copy.copy(record)
        if kind == "stacks":
            out["threads"] = [
                {**t, "spans": [[a, b, refs(stack)] for a, b, stack in t["spans"]]}
                for t in record["threads"]
            ]
        else:
            out["stacks"] = [{**s, "stack": refs(s["stack"])} for s in record["stacks"]]
        line(out)


def _machines(header: Dict[str, Any]) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for dataflow in header.get("dataflows", []):
        for node in dataflow.get("nodes", []):
            if node.get("sample_pid"):
                found.setdefault(str(node.get("machine") or "?"), []).append(str(node.get("id")))
    return found
