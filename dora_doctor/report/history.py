"""The history for people: regressions first, then a table per node, from the same plain data
``history --json`` prints (the report stage does not read the DB itself)."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

SPARKS = "▁▂▃▄▅▆▇█"


def clean(value: object) -> str:
    """Names come from the target: no control characters reach the terminal."""
    return "".join(c if c.isprintable() else "?" for c in str(value))


def bound(value: Optional[Dict[str, Any]]) -> str:
    if not value:
        return "–"
    mark = "≥" if value.get("at_least") else ""
    return f"{mark}{float(value['seconds']):.2f}"


def sparkline(values: Sequence[Optional[float]]) -> str:
    """The last stops' stop→exit as bars; a stop with no time is a space."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    top = max(known) or 1.0
    return "".join(
        " " if v is None else SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1)))]
        for v in values
    )


def outcomes(counts: Dict[str, int]) -> str:
    order = ["clean", "terminated", "killed", "failed", "running", "unknown"]
    keys = sorted(counts, key=lambda k: (order.index(k) if k in order else len(order), k))
    return ", ".join(f"{counts[k]} {clean(k)}" for k in keys)


def when(seconds: Optional[float]) -> str:
    if seconds is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def render_terminal(data: Dict[str, Any], console: Console) -> None:
    nodes: List[Dict[str, Any]] = data.get("nodes", [])
    if not nodes:
        console.print(Text("No stops in the history" + (" for that selection." if data else ".")))
        return
    for regression in data.get("regressions", []):
        console.print(
            Text(
                f"Regression: {clean(regression['dataflow'])}/{clean(regression['node'])}: "
                f"{clean(regression['text'])}",
                style="bold red",
            )
        )
    console.print(Text(f"{data['stops']} stop(s), {data['node_stops']} node stop(s)"))
    by_dataflow: Dict[str, List[Dict[str, Any]]] = {}
    for node in nodes:
        by_dataflow.setdefault(node["dataflow"], []).append(node)
    for name, rows in by_dataflow.items():
        console.print(_table(name, rows))
    console.print(
        Text(
            "≥: dora ended the node at least once at or below this value, so the true time is "
            "longer.",
            style="dim",
        )
    )


def _table(name: str, nodes: List[Dict[str, Any]]) -> Table:
    table = Table(title=Text(clean(name)), title_justify="left")
    table.add_column("node")
    table.add_column("stops", justify="right")
    table.add_column("outcomes")
    for column in ("p50 s", "p95 s", "max s"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("latest cause")
    table.add_column("trend", no_wrap=True)
    for node in nodes:
        cause = clean(node.get("latest_cause") or "–")
        if node.get("latest_holder"):
            cause += f" ({clean(node['latest_holder'])})"
        table.add_row(
            Text(clean(node["node"])),
            str(node["stops"]),
            Text(outcomes(node["outcomes"])),
            bound(node.get("p50")),
            bound(node.get("p95")),
            bound(node.get("max")),
            Text(cause),
            Text(sparkline(node.get("trend", []))),
        )
    return table


def render_grace(data: Dict[str, Any], console: Console) -> None:
    """`tune-grace --from-history`: the suggestion and what it rests on."""
    table = Table(title=f"{clean(data['dataflow'])}: stop→exit of real stops")
    for column in ("node", "stops", "measured", "≥ (ended by dora)", "p50", "p95", "max"):
        table.add_column(column, justify="left" if column == "node" else "right")
    for node in data["nodes"]:
        censored = node.get("censored") or []
        table.add_row(
            Text(clean(node["node"])),
            str(node["runs"]),
            str(len(node.get("measured") or [])),
            f"{len(censored)} (≥ {max(censored):.2f} s)" if censored else "0",
            *(
                f"{node[k]:.2f} s" if node.get(k) is not None else "–"
                for k in ("p50", "p95", "max")
            ),
        )
    console.print(table)
    suggestion = data["suggestion"]
    console.print(
        Text(
            f"Rests on {data['stops']} real stop(s) ({data['node_stops']} node stops), "
            "no rehearsal.",
            style="dim",
        )
    )
    console.print(Text(f"Suggestion: {clean(suggestion['reason'])}", style="bold"))
    if suggestion.get("command"):
        console.print(Text(f"  {clean(suggestion['command'])}"))
