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


# --- the HTML page: one chart of stop→exit over time per node --------------------------------

_COLOURS = {"terminated": "#e67e22", "killed": "#c0392b", "failed": "#8e44ad"}
_W, _H, _PAD = 720, 180, 40


def render_html(data: Dict[str, Any], series: Dict[str, Dict[str, List[Dict[str, Any]]]]) -> str:
    """A self-contained page (no script, no network): per node, each stop's stop→exit as a
    dot (orange: terminated, red: killed; a triangle: at least this long), the grace in force
    as a dashed line, regressions first in words."""
    import html

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>dora-doctor history</title><style>",
        "body{font:14px sans-serif;margin:2em;max-width:60em}h2{font-size:16px}",
        ".reg{color:#c0392b;font-weight:bold}svg{border:1px solid #ddd;background:#fff}",
        "</style></head><body><h1>dora-doctor history</h1>",
        f"<p>{int(data.get('stops', 0))} stop(s), {int(data.get('node_stops', 0))} node "
        "stop(s). Dots: stop→exit of each stop; orange terminated, red killed; ▲ at least "
        "this long (dora ended the node); dashed: the grace in force.</p>",
    ]
    for regression in data.get("regressions", []):
        parts.append(
            f"<p class='reg'>Regression: {html.escape(clean(regression['dataflow']))}/"
            f"{html.escape(clean(regression['node']))}: {html.escape(clean(regression['text']))}"
            "</p>"
        )
    for dataflow, nodes in series.items():
        parts.append(f"<h2>{html.escape(clean(dataflow))}</h2>")
        for node, points in nodes.items():
            parts.append(f"<h3>{html.escape(clean(node))} ({len(points)} latest stops)</h3>")
            parts.append(_chart(points))
    parts.append("</body></html>\n")
    return "".join(parts)


def _chart(points: List[Dict[str, Any]]) -> str:
    timed = [p for p in points if p.get("seconds") is not None]
    if not timed:
        return "<p>no stop→exit measured</p>"
    top = max([p["seconds"] for p in timed] + [p.get("grace") or 0.0 for p in timed]) or 1.0
    top *= 1.1
    count = len(points)

    def x(i: int) -> float:
        return _PAD + (i + 0.5) * (_W - 2 * _PAD) / count

    def y(value: float) -> float:
        return _H - _PAD + -(value / top) * (_H - 2 * _PAD)

    shapes = []
    grace_line = [f"{x(i):.1f},{y(p['grace']):.1f}" for i, p in enumerate(points) if p.get("grace")]
    if len(grace_line) > 1:
        shapes.append(
            f"<polyline points='{' '.join(grace_line)}' fill='none' stroke='#555' "
            "stroke-dasharray='4 3'/>"
        )
    for i, point in enumerate(points):
        seconds = point.get("seconds")
        if seconds is None:
            continue
        colour = _COLOURS.get(str(point.get("outcome")), "#2980b9")
        cx, cy = x(i), y(seconds)
        if point.get("censored"):
            shapes.append(
                f"<polygon class='censored' points='{cx:.1f},{cy - 5:.1f} {cx - 4:.1f},"
                f"{cy + 3:.1f} {cx + 4:.1f},{cy + 3:.1f}' fill='{colour}'/>"
            )
        else:
            shapes.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='3' fill='{colour}'/>")
    axis = (
        f"<line x1='{_PAD}' y1='{_H - _PAD}' x2='{_W - _PAD}' y2='{_H - _PAD}' stroke='#999'/>"
        f"<text x='4' y='{_PAD}' font-size='11'>{top:.1f} s</text>"
        f"<text x='4' y='{_H - _PAD}' font-size='11'>0 s</text>"
        f"<text x='{_PAD}' y='{_H - 8}' font-size='11'>{when(points[0].get('at'))}</text>"
        f"<text x='{_W - _PAD}' y='{_H - 8}' font-size='11' text-anchor='end'>"
        f"{when(points[-1].get('at'))}</text>"
    )
    return f"<svg width='{_W}' height='{_H}' role='img'>{axis}{''.join(shapes)}</svg>"
