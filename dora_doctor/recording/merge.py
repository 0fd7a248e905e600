"""Merge recordings of one dataflow made on several machines into one recording.

py-spy can only read processes on its own machine, so a dataflow spread over machines is
sampled by one ``inspect --machine ID --record ID.ddrec`` per machine. Each file is a whole
recording of its own: its own frame table, its own header, its nodes' samples. Merging
puts every record of every file into one timeline by wall clock (the clocks of the machines
are assumed to agree, as dora's own logs assume), and joins the headers, so ``report`` reads
the result like any recording made on one machine.

Inputs are read through the reader (every record checked by the codec) and the result is
written through the writer, so merge knows nothing of the line format. Every input is read
and checked whole before anything is written, a damaged input is refused with one line, and
the output appears only complete: it is written to a temporary file beside it and linked into
place at the end, never over an existing file. Record types this version does not know are
not carried over: they cannot be checked.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from dora_doctor.errors import DoctorError
from dora_doctor.model import (
    CpuSegment,
    Dataflow,
    GilSegment,
    LocalsSnapshot,
    NodeProcess,
    StackSegment,
)
from dora_doctor.recording import codec
from dora_doctor.recording.model import Record, Recording
from dora_doctor.recording.reader import ensure_usable, read_in_order
from dora_doctor.recording.writer import RecordingWriter

_SAMPLES = (StackSegment, GilSegment, CpuSegment, LocalsSnapshot)


@dataclass
class _Input:
    path: Path
    recording: Recording
    records: List[Record]  # in file order

    @property
    def sampled(self) -> Set[Tuple[str, str]]:
        """(dataflow, node) pairs this recording sampled: its samples are the ones kept."""
        return {(d.uuid, n.id) for d in self.recording.dataflows for n in d.nodes if n.sample_pid}


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
    output = Path(output)
    if output.exists():
        raise DoctorError(f"{output} already exists: dora-doctor does not overwrite files")
    loaded = [_load(Path(path)) for path in inputs]
    dataflow = _same_dataflow(loaded)
    _no_double_sampling(loaded)
    header, dataflows = _merged_header(loaded)
    ordered, duplicates = _timeline(loaded)
    _write_new(output, header, ordered)
    return MergeResult(
        output=output,
        inputs=[Path(p) for p in inputs],
        records=len(ordered),
        dataflow=dataflow,
        machines=_machines(dataflows),
        duplicates=duplicates,
    )


def _load(path: Path) -> _Input:
    """One input, read and checked whole; a damaged one is refused (merging it would hide
    the damage in a file that then reads as sound). A cut-off last line is not damage."""
    recording, records = read_in_order(path)
    ensure_usable(recording)
    skipped = recording.skipped_records
    if skipped.count:
        raise DoctorError(
            f"{path} is damaged ({skipped.summary()}; first, {skipped.reasons[0]}): "
            "merge only sound recordings"
        )
    return _Input(path, recording, records)


def _same_dataflow(loaded: List[_Input]) -> str:
    """Recordings of different dataflows do not make one timeline: refused."""

    def dataflows(item: _Input) -> Dict[str, str]:
        return {d.uuid: d.name or d.uuid for d in item.recording.dataflows}

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
    # names and uuids come from the inputs: JSON-quoted where they are not plain, so that no
    # control character reaches the terminal through this error line
    def plain(text: str) -> str:
        return text if text.isprintable() and len(text) <= 80 else codec.quote(text, 80)

    return (
        ", ".join(
            f"{plain(name)} ({plain(uuid)})" if name != uuid else plain(uuid)
            for uuid, name in sorted(dataflows.items())
        )
        or "none"
    )


def _no_double_sampling(loaded: List[_Input]) -> None:
    """Two recordings sampling one node at the same time would count its samples twice."""
    for index, one in enumerate(loaded):
        for other in loaded[index + 1 :]:
            for key in sorted(one.sampled & other.sampled):
                if _overlap(_span(one, key), _span(other, key)):
                    node = key[1] if key[1].isprintable() else codec.quote(key[1], 80)
                    raise DoctorError(
                        f"node {node} was sampled in both {one.path} and {other.path} at the "
                        "same time: merge recordings made with `inspect --machine ID`, one per "
                        "machine"
                    )


def _span(item: _Input, key: Tuple[str, str]) -> Optional[Tuple[float, float]]:
    times = [(s.start, s.end) for s in item.recording.stacks if (s.dataflow, s.node) == key]
    return (min(t[0] for t in times), max(t[1] for t in times)) if times else None


def _overlap(a: Optional[Tuple[float, float]], b: Optional[Tuple[float, float]]) -> bool:
    return a is not None and b is not None and a[0] < b[1] and b[0] < a[1]


def _merged_header(loaded: List[_Input]) -> Tuple[Dict[str, Any], List[Dataflow]]:
    """The earliest recording's header, with every node taken from where it was sampled."""
    by_start = sorted(loaded, key=lambda item: _wall(item.recording.header))
    header = copy.deepcopy(by_start[0].recording.header)
    header["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    dataflows = [_merged_dataflow(d, loaded) for d in by_start[0].recording.dataflows]
    header["dataflows"] = [codec.encode_dataflow(d) for d in dataflows]
    logs: Dict[str, Any] = {}
    for item in by_start:
        for source, path in (item.recording.header.get("logs") or {}).items():
            if path and path not in str(logs.get(source, "")).split("; "):
                logs[source] = f"{logs[source]}; {path}" if logs.get(source) else path
    header["logs"] = logs
    header["merged_from"] = [
        {
            "path": str(item.path),
            "created": item.recording.header.get("created"),
            "host": item.recording.header.get("host"),
            "sampler": item.recording.header.get("sampler"),
            "sampled": sorted(node for _, node in item.sampled),
        }
        for item in loaded
    ]
    return header, dataflows


def _wall(header: Dict[str, Any]) -> float:
    clocks = header.get("clocks")
    wall = clocks.get("wall") if isinstance(clocks, dict) else None
    return float(wall) if isinstance(wall, (int, float)) else float("inf")


def _merged_dataflow(dataflow: Dataflow, loaded: List[_Input]) -> Dataflow:
    entries: Dict[str, List[NodeProcess]] = {}
    for item in loaded:
        for other in item.recording.dataflows:
            if other.uuid == dataflow.uuid:
                for node in other.nodes:
                    entries.setdefault(node.id, []).append(node)
    nodes = []
    for versions in entries.values():
        # the sampled entry knows the interpreter; any entry may know the machine
        sampled = [n for n in versions if n.sample_pid]
        best = sampled[0] if sampled else versions[0]
        machine = best.machine or next((n.machine for n in versions if n.machine), None)
        nodes.append(replace(best, machine=machine))
    return replace(dataflow, nodes=nodes)


def _timeline(loaded: List[_Input]) -> Tuple[List[Record], int]:
    """Every record of every input in wall-clock order; identical records once.

    A node's samples come only from the recordings that sampled it, and a record without a
    time of its own keeps its place after the record before it in its file.
    """
    keyed: List[Tuple[float, int, int, Record]] = []
    seen: Set[str] = set()
    duplicates = 0
    for index, item in enumerate(loaded):
        sampled = item.sampled
        last = float("-inf")
        for order, record in enumerate(item.records):
            key = (record.dataflow, record.node)
            if isinstance(record, _SAMPLES) and sampled and key not in sampled:
                continue
            if not isinstance(record, (StackSegment, GilSegment)):
                text = json.dumps(codec.encode_record(record, _no_refs), sort_keys=True)
                if text in seen:
                    duplicates += 1
                    continue
                seen.add(text)
            moment = _time_of(record)
            last = moment if moment is not None else last
            keyed.append((last, index, order, record))
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed], duplicates


def _no_refs(stack: Any) -> List[int]:
    return []


def _time_of(record: Record) -> Optional[float]:
    if isinstance(record, (StackSegment, GilSegment, CpuSegment)):
        return record.start
    return record.time  # a log line may have none


def _write_new(output: Path, header: Dict[str, Any], records: List[Record]) -> None:
    """Write to a temporary file beside ``output``, then link it into place: a failure at
    any point leaves no partial recording, and an existing file is never replaced."""
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{output.name}.", suffix=".part", dir=output.parent
        )
    except OSError as err:
        raise DoctorError(f"cannot create {output}: {err.strerror}") from err
    try:
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                writer = RecordingWriter(output, header, file)
                for record in records:
                    writer.write(record)
            _publish(Path(temporary), output)
        except OSError as err:
            raise DoctorError(f"cannot write {output}: {err.strerror}") from err
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _publish(temporary: Path, output: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(temporary, 0o666 & ~mask)  # as a plain open() would have made it
    try:
        os.link(temporary, output)  # fails if output appeared meanwhile: nothing is replaced
    except FileExistsError as err:
        raise DoctorError(f"{output} already exists: dora-doctor does not overwrite files") from err
    except OSError:
        if output.exists():  # a file system without hard links
            raise DoctorError(
                f"{output} already exists: dora-doctor does not overwrite files"
            ) from None
        os.rename(temporary, output)


def _machines(dataflows: List[Dataflow]) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for dataflow in dataflows:
        for node in dataflow.nodes:
            if node.sample_pid:
                found.setdefault(node.machine or "?", []).append(node.id)
    return found
