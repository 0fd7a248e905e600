"""Rendering a post-mortem: the per-node report plus counts over the whole input."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Dict

from rich.console import Console
from rich.table import Table

from dora_doctor.postmortem import Postmortem
from dora_doctor.report import terminal


def to_dict(result: Postmortem) -> Dict[str, Any]:
    data = result.report.to_dict()
    stats = result.scan.stats
    data["postmortem"] = {
        "inputs": {
            "files": stats.files,
            "bytes": stats.bytes,
            "lines": stats.lines,
            "events": len(result.scan.events),
            "other_lines": max(0, stats.lines - len(result.scan.events)),
            "cut_lines": stats.cut_lines,
            "problems": stats.problems,
        },
        "summary": asdict(result.summary),
    }
    return data


def render_json(result: Postmortem) -> str:
    return json.dumps(to_dict(result), indent=2) + "\n"


def render_terminal(result: Postmortem, console: Console) -> None:
    terminal.render(result.report, console)
    summary = result.summary
    table = Table(title="over the whole input", title_justify="left")
    for column in ("node", "terminated", "killed", "slowest stop→exit"):
        table.add_column(column, justify="left" if column == "node" else "right")
    names = sorted(set(summary.terminated) | set(summary.killed) | set(summary.slowest_stop_s))
    for name in names:
        slowest = summary.slowest_stop_s.get(name)
        table.add_row(
            name,
            str(summary.terminated.get(name, 0)),
            str(summary.killed.get(name, 0)),
            f"{slowest:.2f} s" if slowest is not None else "–",
        )
    console.print(table)
    stats = result.scan.stats
    console.print(
        f"{summary.stops} stop request(s); read {stats.files} file(s), {stats.lines:,} lines, "
        f"{len(result.scan.events)} about stops"
        + (f", {stats.cut_lines} over-long line(s) cut" if stats.cut_lines else ""),
        highlight=False,
    )
