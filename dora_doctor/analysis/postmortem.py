"""Post-mortem of dora's logs: every stop, every node's end, and why, after the fact.

The logs are read once, as a stream (:mod:`~dora_doctor.logs.logfiles`), into the same
:class:`~dora_doctor.logs.events.LogEvent`s the live watch records. Per dataflow they are then put
into a :class:`~dora_doctor.recording.model.Recording` with no samples, so the outcome, stop
duration and grace come from the very code ``inspect`` uses. With ``--recording``, the
log events of the recorded dataflow are added to the samples of the same run, and the full
diagnosis (GIL holders at the kill included) follows.

Memory stays flat whatever the input's size: no list of lines or events is ever built. Each
input streams through the parser once; every event is counted per node and kind, and only the
first KEEP_HEAD and last KEEP_TAIL events are kept for the diagnosis and the timeline (the
output says how many were left out between them).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Deque, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from dora_doctor.analysis.findings import Diagnosis, Outcome
from dora_doctor.dora.versions import line_from_log
from dora_doctor.logs import envelopes, machines, parse, patterns
from dora_doctor.logs import events as logevents
from dora_doctor.logs.logfiles import LogSource, ReadStats, candidate_lines, expand, read_head
from dora_doctor.model import Dataflow, NodeProcess
from dora_doctor.recording.model import SCHEMA, Recording

UNKNOWN_DATAFLOW = "unknown"
# a clock-only CLI line is dated from the nearest full timestamp, within half a day
HALF_DAY_S = 12 * 3600


# What is kept of a long input: the first and the last events read, for the diagnosis and
# the timeline. Everything between is counted per node and kind, never held: memory stays
# flat whatever the input's size, and the output says how many events were left out.
KEEP_HEAD = 2000
KEEP_TAIL = 2000
# Bounds on what names from the input can grow: distinct nodes counted, nodes deployed, and
# the strings a kept event holds (a 64 KiB line could otherwise make each kept event 64 KiB)
MAX_NODES = 1000
MAX_DEPLOYED = 10_000
MAX_NAME = 256
MAX_TEXT = 2000
OTHER_NODES = "(other nodes)"


@dataclass
class Scan:
    """Everything read from the inputs: the events kept, counts of all, what could not be read."""

    stats: ReadStats = field(default_factory=ReadStats)
    events: List[logevents.LogEvent] = field(default_factory=list)  # kept, by wall clock
    sources: List[LogSource] = field(default_factory=list)
    node_logs: Dict[str, List[str]] = field(default_factory=dict)  # dataflow → node ids
    dora_versions: List[str] = field(default_factory=list)
    # where each node ran: (dataflow or "", node) → machine id, from the daemon logs' names and
    # lines, and dataflow → node → machine from the coordinator's spawn line
    machines: Dict[Tuple[str, str], str] = field(default_factory=dict)
    deployed: Dict[str, Dict[str, str]] = field(default_factory=dict)
    timeline: List["TimelineEntry"] = field(default_factory=list)  # the kept events' entries
    events_read: int = 0  # every event of the input, kept or not
    # node → event kind → count, over the whole input (kept or not)
    by_node: Dict[str, Dict[str, int]] = field(default_factory=dict)

    @property
    def events_omitted(self) -> int:
        """Events read and counted but not kept (between the first and last kept ones)."""
        return self.events_read - len(self.events)


@dataclass
class TimelineEntry:
    """One event of the merged timeline, with the machine whose daemon (or node) wrote it;
    ``machine`` is None for the coordinator and for inputs that name no machine."""

    event: logevents.LogEvent
    machine: Optional[str]
    source: str  # the input's kind: coordinator, daemon, node, stdin, other

    @property
    def time(self) -> Optional[float]:
        return self.event.time


@dataclass
class Summary:
    stops: int = 0
    terminated: Dict[str, int] = field(default_factory=dict)
    killed: Dict[str, int] = field(default_factory=dict)
    slowest_stop_s: Dict[str, float] = field(default_factory=dict)


class _Kept:
    """The first KEEP_HEAD entries and a sliding window of the last KEEP_TAIL."""

    def __init__(self) -> None:
        self.head: List[TimelineEntry] = []
        self.tail: Deque[TimelineEntry] = deque(maxlen=KEEP_TAIL)
        self.into_tail = 0  # entries that went to the tail since mark()
        self.head_mark = 0

    def add(self, entry: TimelineEntry) -> None:
        if len(self.head) < KEEP_HEAD:
            self.head.append(entry)
        else:
            self.tail.append(entry)
            self.into_tail += 1

    def mark(self) -> None:
        self.head_mark, self.into_tail = len(self.head), 0

    def since_mark(self) -> List[TimelineEntry]:
        """The kept entries added since mark(), in order (the tail's are its last ones)."""
        from_tail = min(self.into_tail, len(self.tail))
        tail = list(islice(reversed(self.tail), from_tail))[::-1]
        return self.head[self.head_mark :] + tail

    def all(self) -> List[TimelineEntry]:
        return self.head + list(self.tail)


@dataclass
class _Reading:
    """What one input says beyond its events, noted while it streams by."""

    first_line: Optional[str] = None
    cli: bool = False  # the dora CLI's own lines, not a daemon's tracing output
    machine: Optional[str] = None  # the first machine id a daemon's line names
    reference: Optional[float] = None  # the first full timestamp, to date clock-only lines
    dataflows: Set[str] = field(default_factory=set)  # up to two: is there only one?
    deployed: int = 0  # nodes noted from this input's spawn lines


def scan(inputs: Sequence[str]) -> Scan:
    result = Scan()
    result.sources = expand(inputs, result.stats)
    kept = _Kept()
    for source in result.sources:
        if source.kind == "node" and source.node:
            result.node_logs.setdefault(source.dataflow or UNKNOWN_DATAFLOW, []).append(source.node)
        kept.mark()
        reading = _scan_source(result, source, kept)
        if source.kind in ("daemon", "coordinator") and reading.first_line is not None:
            generation = dora_generation(reading.first_line)
            if generation == "≥0.4":
                generation = _release_line_of(source) or generation
            if generation and generation not in result.dora_versions:
                result.dora_versions.append(generation)
        _finish_source(result, source, reading, kept.since_mark())
    if "≥0.4" in result.dora_versions and any(
        v not in ("≥0.4", "0.3.x") for v in result.dora_versions
    ):  # a coordinator log without marks, beside the daemon log that names the line
        result.dora_versions.remove("≥0.4")
    # several daemons' logs make one timeline by wall clock (lines without a time go last)
    result.timeline = sorted(kept.all(), key=lambda entry: _wall_clock(entry.event))
    result.events = [entry.event for entry in result.timeline]
    return result


def _scan_source(result: Scan, source: LogSource, kept: _Kept) -> _Reading:
    """Stream one input's events into ``kept`` and the per-node counts."""
    reading = _Reading()
    lines = _decoded(candidate_lines(source, result.stats, patterns.CANDIDATE_ANCHORS))
    reference: Optional[float] = None
    for event in parse.parse_lines(_noting(lines, source, result, reading), source.kind):
        if source.kind == "node":
            event.node = event.node or source.node
            event.dataflow = event.dataflow or source.dataflow
        # CLI lines carry a local time of day only: date it from the nearest full timestamp
        # before it (the first one of the input for lines above that)
        if event.time is not None:
            reference = event.time
            if reading.reference is None:
                reading.reference = event.time
        elif event.clock and reference is not None:
            event.time = _at_clock(reference, event.clock)
        _bound(event)
        if event.dataflow and len(reading.dataflows) < 2:
            reading.dataflows.add(event.dataflow)
        _count(result, event)
        kept.add(TimelineEntry(event, None, source.kind))
    return reading


def _noting(
    lines: Iterator[str], source: LogSource, result: Scan, reading: _Reading
) -> Iterator[str]:
    """Pass the lines on, noting the first one, the CLI's, the machine, the deployments."""
    for line in lines:
        if reading.first_line is None:
            reading.first_line = line
        if source.kind in ("other", "stdin") and not reading.cli:
            record = envelopes.parse_record(line)
            reading.cli = record is not None and record.envelope in ("cli", "cli-plain")
        if source.kind == "daemon" and source.machine is None and reading.machine is None:
            reading.machine = machines.machine_in_line(line)
        if source.kind == "coordinator":
            dataflow, deployed = machines.deployments_in_line(line)
            if dataflow and deployed and reading.deployed + len(deployed) <= MAX_DEPLOYED:
                reading.deployed += len(deployed)
                result.deployed.setdefault(dataflow, {}).update(deployed)
        yield line


def _bound(event: logevents.LogEvent) -> None:
    """Cut what a line can make arbitrarily long: names to MAX_NAME, the text to MAX_TEXT."""
    if len(event.text) > MAX_TEXT:
        event.text = event.text[: MAX_TEXT - 1] + "…"
    for name in ("node", "dataflow", "level", "clock"):
        value = getattr(event, name)
        if value is not None and len(value) > MAX_NAME:
            setattr(event, name, value[: MAX_NAME - 1] + "…")


def _count(result: Scan, event: logevents.LogEvent) -> None:
    result.events_read += 1
    if not event.node:
        return
    node = event.node
    if node not in result.by_node and len(result.by_node) >= MAX_NODES:
        node = OTHER_NODES
    kinds = result.by_node.setdefault(node, {})
    kinds[event.kind] = kinds.get(event.kind, 0) + 1


def _finish_source(
    result: Scan, source: LogSource, reading: _Reading, entries: List[TimelineEntry]
) -> None:
    """What needs the whole input, applied to its kept events once it has been read."""
    found = [entry.event for entry in entries]
    if reading.reference is not None:
        for event in found:
            if event.time is None and event.clock:  # above the input's first full timestamp
                event.time = _at_clock(reading.reference, event.clock)
    if len(reading.dataflows) == 1:  # lines without a dataflow id belong to the only one
        (only,) = reading.dataflows
        for event in found:
            event.dataflow = event.dataflow or only
    if source.kind in ("other", "stdin") and reading.cli:
        # a CLI's output (`dora run`, `dora start --attach`) is one dataflow of its own
        for event in found:
            event.dataflow = event.dataflow or f"(dataflow in {Path(source.name).name})"
    _place(result, source, reading.machine, entries)


def _wall_clock(event: logevents.LogEvent) -> float:
    return event.time if event.time is not None else float("inf")


def _place(
    result: Scan, source: LogSource, line_machine: Optional[str], entries: List[TimelineEntry]
) -> None:
    """Note which machine each node of this input ran on, and on its timeline entries."""
    machine = source.machine
    if source.kind == "daemon" and machine is None:
        machine = line_machine
    if machine and source.kind == "node" and source.node:
        result.machines[(source.dataflow or "", source.node)] = machine
    for entry in entries:
        event = entry.event
        if machine and event.node and source.kind in ("daemon", "node"):
            result.machines[(event.dataflow or "", event.node)] = machine
        entry.machine = machine if source.kind != "coordinator" else None


# How much of a daemon's or coordinator's log is read for the marks of its release line.
_HEAD_BYTES = 64 * 1024


def _release_line_of(source: LogSource) -> Optional[str]:
    """The release line a JSON log's first lines name (0.4.x, 0.5.x, ≥1.0): they differ in
    what their daemons log (0.4.x: no node exit; 0.5.x: kill lines for every node)."""
    head = read_head(source, _HEAD_BYTES)
    return line_from_log(head.decode("utf-8", "replace"))


def dora_generation(line: str) -> Optional[str]:
    """dora ≥ 0.4 writes its log files as JSON lines, 0.3.x as tracing text."""
    stripped = envelopes.strip_ansi(line).lstrip()
    if stripped.startswith("{"):
        return "≥0.4"
    if envelopes.parse_timestamp(stripped[:40]) is not None:
        return "0.3.x"
    return None


def _decoded(lines: Iterator[bytes]) -> Iterator[str]:
    for line in lines:
        yield line.decode("utf-8", "replace")


def _at_clock(reference: float, clock: str) -> Optional[float]:
    try:
        hours, minutes, seconds = clock.split(":")
        into_day = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None
    local = time.localtime(reference)
    midnight = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))
    value = midnight + into_day
    if value - reference > HALF_DAY_S:
        value -= 86400
    elif reference - value > HALF_DAY_S:
        value += 86400
    return value


def recordings_from_scan(found: Scan) -> List[Recording]:
    """One sample-less recording per dataflow, so the diagnosis code reads it as usual."""
    by_dataflow: Dict[str, List[logevents.LogEvent]] = defaultdict(list)
    nodes: Dict[str, List[str]] = defaultdict(list)
    for event in found.events:
        key = (
            event.dataflow
            or _dataflow_of_node(found.events, event)
            or _dataflow_stopped_before(found, event)
            or UNKNOWN_DATAFLOW
        )
        event.dataflow = key
        by_dataflow[key].append(event)
        if event.node and event.node not in nodes[key]:
            nodes[key].append(event.node)
    for key, names in found.node_logs.items():
        for name in names:
            if name not in nodes[key]:
                nodes[key].append(name)
    for key, deployed in found.deployed.items():
        for name in deployed:  # a node that ended cleanly on another machine left no line
            if key in by_dataflow and name not in nodes[key]:
                nodes[key].append(name)
    daemon_read = any(s.kind in ("daemon", "stdin", "other") for s in found.sources)
    recordings = []
    for key in sorted(set(by_dataflow) | set(found.node_logs)):
        dataflow = Dataflow(
            uuid=key,
            name=None,
            nodes=[
                NodeProcess(id=n, dataflow=key, machine=_machine(found, key, n))
                for n in sorted(nodes[key])
            ],
        )
        header = {
            "type": "header",
            "schema": SCHEMA,
            "dora_version": found.dora_versions[0] if len(found.dora_versions) == 1 else None,
            "logs": {"daemon": "read"} if daemon_read else {},
        }
        recordings.append(
            Recording(path=None, header=header, dataflows=[dataflow], logs=by_dataflow[key])
        )
    return recordings


def _machine(found: Scan, dataflow: str, node: str) -> Optional[str]:
    return (
        found.machines.get((dataflow, node))
        or found.deployed.get(dataflow, {}).get(node)
        or found.machines.get(("", node))
    )


def _dataflow_of_node(events: List[logevents.LogEvent], event: logevents.LogEvent) -> Optional[str]:
    """A daemon's kill line names only the node: take the dataflow of its exit line."""
    if not event.node or event.time is None:
        return None
    for other in events:
        if (
            other.node == event.node
            and other.dataflow
            and not other.dataflow.startswith("(")
            and other.time is not None
            and abs(other.time - event.time) <= 2.0
        ):
            return other.dataflow
    return None


def _dataflow_stopped_before(found: Scan, event: logevents.LogEvent) -> Optional[str]:
    """0.3.x's kill line names neither dataflow nor exit: take the dataflow with this node
    whose stop request came last before the kill."""
    if not event.node or event.time is None:
        return None
    with_node = {d for d, names in found.node_logs.items() if event.node in names}
    with_node |= {e.dataflow for e in found.events if e.node == event.node and e.dataflow}
    stops = [
        e
        for e in found.events
        if e.kind == logevents.STOP_REQUEST
        and e.dataflow in with_node
        and e.time is not None
        and e.time <= event.time
    ]
    latest = max(stops, key=lambda e: e.time or 0.0, default=None)
    return latest.dataflow if latest is not None else None


def postmortem(inputs: Sequence[str], recording: Optional[Recording] = None) -> "Postmortem":
    # The diagnosis code takes about 0.15 s to import, and while ripgrep reads a large log
    # this process only waits on a pipe: the import runs meanwhile, in a thread.
    warm_up = threading.Thread(
        target=importlib.import_module, args=("dora_doctor.analysis.diagnose",), daemon=True
    )
    warm_up.start()
    found = scan(inputs)
    warm_up.join()
    from dora_doctor.analysis import diagnose

    versions = found.dora_versions
    report = Diagnosis(dora_version=versions[0] if len(versions) == 1 else None)
    for dataflow_recording in recordings_from_scan(found):
        uuid = dataflow_recording.dataflows[0].uuid
        if recording is not None and any(d.uuid == uuid for d in recording.dataflows):
            recording.logs.extend(dataflow_recording.logs)
            continue
        report.dataflows.extend(diagnose.report_from_recording(dataflow_recording).dataflows)
    if recording is not None:
        recorded = diagnose.report_from_recording(recording)
        report.dora_version = recorded.dora_version
        report.recording = str(recording.path) if recording.path else None
        report.dataflows = recorded.dataflows + report.dataflows
    return Postmortem(report=report, scan=found, summary=summarise(report, found))


@dataclass
class Postmortem:
    report: Diagnosis
    scan: Scan
    summary: Summary


def summarise(report: Diagnosis, found: Scan) -> Summary:
    summary = Summary()
    summary.stops = len(
        {(e.dataflow, e.pattern) for e in found.events if e.kind == logevents.STOP_REQUEST}
    )
    for dataflow in report.dataflows:
        for node in dataflow.nodes:
            if node.outcome == Outcome.TERMINATED:
                summary.terminated[node.id] = summary.terminated.get(node.id, 0) + 1
            if node.outcome == Outcome.KILLED:
                summary.killed[node.id] = summary.killed.get(node.id, 0) + 1
            if node.stop_duration_s is not None:
                slowest = max(summary.slowest_stop_s.get(node.id, 0.0), node.stop_duration_s)
                summary.slowest_stop_s[node.id] = slowest
    return summary


def read_recording_for(path: Optional[Path]) -> Optional[Recording]:
    if path is None:
        return None
    from dora_doctor.recording.reader import read_recording

    return read_recording(path)
