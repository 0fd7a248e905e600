"""Rendering a post-mortem: the per-node report plus counts over the whole input."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional

from rich.console import Console
from rich.table import Table

from dora_doctor.analysis.postmortem import KEEP_HEAD, KEEP_TAIL, Postmortem, TimelineEntry
from dora_doctor.analysis.result import STOP_REQUEST
from dora_doctor.report import RenderOptions, consoles, terminal
from dora_doctor.report.consoles import text


class PostmortemJson:
    name = "json"
    suffix = ".json"

    def render(self, result: Postmortem, options: RenderOptions) -> str:
        return json.dumps(to_dict(result), indent=2) + "\n"


class PostmortemTerminal:
    """The per-node report, the counts over the whole input, and the merged timeline of
    several machines' logs."""

    name = "terminal"
    suffix = ""

    def render(self, result: Postmortem, options: RenderOptions) -> str:
        console = consoles.capture(options)
        _draw(result, console)
        return consoles.captured(console)


def to_dict(result: Postmortem) -> Dict[str, Any]:
    data = result.report.to_dict()
    stats = result.scan.stats
    data["postmortem"] = {
        "inputs": {
            "files": stats.files,
            "bytes": stats.bytes,
            "lines": stats.lines,
            "events": result.scan.events_read,
            "other_lines": max(0, stats.lines - result.scan.events_read),
            "cut_lines": stats.cut_lines,
            "problems": stats.problems,
            "events_kept": len(result.scan.events),
            "events_omitted": result.scan.events_omitted,
        },
        "summary": {**asdict(result.summary), "events_by_node": result.scan.by_node},
        "machines": machines_of(result),
        "timeline": [_entry_dict(e) for e in result.scan.timeline[:TIMELINE_JSON_MAX]],
        "timeline_omitted": result.scan.events_read
        - min(len(result.scan.timeline), TIMELINE_JSON_MAX),
    }
    return data


# The merged timeline is for reading a shutdown, not a dump of a long log.
TIMELINE_JSON_MAX = 500
TIMELINE_LINES = 40
_REMOVED_MACHINE = re.compile(r"removed machine id: (?P<machine>\S+?)-[0-9a-f]{8}-")


def machines_of(result: Postmortem) -> Dict[str, List[str]]:
    """Machine id → the nodes that ran on it (as far as the logs say)."""
    found: Dict[str, List[str]] = {}
    for dataflow in result.report.dataflows:
        for node in dataflow.nodes:
            if node.machine and node.id not in found.setdefault(node.machine, []):
                found[node.machine].append(node.id)
    return found


def _machine_of_entry(entry: TimelineEntry) -> Optional[str]:
    """The coordinator's "removed machine id: B-…" line is about machine B."""
    removed = _REMOVED_MACHINE.search(entry.event.text)
    return entry.machine or (removed["machine"] if removed else None)


def _entry_dict(entry: TimelineEntry) -> Dict[str, Any]:
    event = entry.event
    return {
        "time": event.time,
        "machine": _machine_of_entry(entry),
        "source": entry.source,
        "dataflow": event.dataflow,
        "node": event.node,
        "kind": event.kind,
        "text": event.text,
    }


def _clock(value: Optional[float]) -> str:
    if value is None:
        return "?"
    stamp = time.strftime("%H:%M:%S", time.gmtime(value))
    return f"{stamp}.{int((value % 1) * 1000):03d}"


def describe(entry: TimelineEntry) -> str:
    """The event in a few words; dora's own words where they are short enough."""
    event = entry.event
    removed = _REMOVED_MACHINE.search(event.text)
    if removed:
        return f"dora: every node on {removed['machine']} has ended"
    if event.kind == STOP_REQUEST:
        return "stop requested" + (f" (grace {event.seconds:g} s)" if event.seconds else "")
    return shorten(event.text)


def _render_timeline(result: Postmortem, console: Console) -> None:
    """Logs of several machines read together: their events in one wall-clock order."""
    entries = result.scan.timeline
    if len({_machine_of_entry(e) for e in entries} - {None}) < 2:
        return
    table = Table(title="timeline of all machines (UTC)", title_justify="left")
    for column in ("time", "machine", "node", "what"):
        table.add_column(column, no_wrap=column != "what")
    for entry in entries[:TIMELINE_LINES]:
        where = _machine_of_entry(entry) or entry.source
        cells = (_clock(entry.time), where, entry.event.node or "–", describe(entry))
        table.add_row(*(text(cell) for cell in cells))
    console.print(table)
    more = result.scan.events_read - min(len(entries), TIMELINE_LINES)
    if more > 0:
        has = "has them" if result.scan.events_omitted == 0 else f"has {TIMELINE_JSON_MAX}"
        console.print(f"… {more:,} more events (--json {has})", highlight=False)


def shorten(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _draw(result: Postmortem, console: Console) -> None:
    terminal.draw(result.report, console)
    summary = result.summary
    table = Table(title="over the whole input", title_justify="left")
    for column in ("node", "terminated", "killed", "slowest stop→exit"):
        table.add_column(column, justify="left" if column == "node" else "right")
    names = sorted(set(summary.terminated) | set(summary.killed) | set(summary.slowest_stop_s))
    for name in names:
        slowest = summary.slowest_stop_s.get(name)
        table.add_row(
            text(name),
            str(summary.terminated.get(name, 0)),
            str(summary.killed.get(name, 0)),
            f"{slowest:.2f} s" if slowest is not None else "–",
        )
    console.print(table)
    _render_timeline(result, console)
    stats = result.scan.stats
    console.print(
        f"{summary.stops} stop request(s); read {stats.files} file(s), {stats.lines:,} lines, "
        f"{result.scan.events_read:,} about stops"
        + (f", {stats.cut_lines} over-long line(s) cut" if stats.cut_lines else ""),
        highlight=False,
    )
    if result.scan.events_omitted:
        console.print(
            f"of {result.scan.events_read:,} events, the first {KEEP_HEAD:,} and the last "
            f"{KEEP_TAIL:,} were kept for the diagnosis and the counts above; the "
            f"{result.scan.events_omitted:,} between them were only counted per node "
            "(--json: events_by_node)",
            highlight=False,
        )
