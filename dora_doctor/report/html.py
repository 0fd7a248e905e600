"""One self-contained HTML file that shows a shutdown: lanes per thread, markers, cards.

No network at view time: inline CSS, inline SVG, a Content-Security-Policy that forbids any
fetch, and no script at all: hovering a lane segment shows the sampled stack (SVG
``<title>``). Per node, a lane per thread over time: GIL held most of the time (solid),
some of it (light), running without it (amber: on a CPU by ``/proc``, GIL not held), waiting
(pale), not sampled (empty); vertical markers for the stop request, the grace deadline
(SIGTERM), the SIGKILL point and the process exit.
Above the lanes, the node's diagnosis card. Light and dark follow the viewer's setting.

Lanes are drawn in fixed-width buckets (``BUCKETS`` per lane), merged where a bucket looks
like the one before, so the file stays small at 10 nodes × 30 s × 100 Hz.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Dict, List, Sequence, Tuple

from dora_doctor.analysis import redaction
from dora_doctor.analysis.findings import Diagnosis, NodeFinding
from dora_doctor.analysis.result import Analysis, DataflowAnalysis
from dora_doctor.analysis.timeline import (
    EXIT,
    GRACE,
    HELD,
    KILL,
    LANE_STATES,
    NOT_HELD,
    RUNNING,
    SOME,
    STOP,
    WAITING,
    Marker,
)
from dora_doctor.model import Dataflow, Stack
from dora_doctor.report import RenderOptions

WIDTH = 900
LANE_H = 18
LABEL_W = 150
BUCKETS = 450

CSS = """
:root { --bg:#fff; --fg:#1d1f21; --muted:#6a737d; --card:#f6f8fa; --line:#d0d7de;
  --held:#cf222e; --some:#f0a0a6; --running:#d4a72c; --waiting:#c9e3f8; --free:#d8dee4;
  --ok:#1a7f37; --warn:#9a6700; }
@media (prefers-color-scheme: dark) { :root { --bg:#0d1117; --fg:#e6edf3; --muted:#8b949e;
  --card:#161b22; --line:#30363d; --held:#ff7b72; --some:#8e3a3a; --running:#9e6a03;
  --waiting:#1f3b57; --free:#2d333b; --ok:#3fb950; --warn:#d29922; } }
body { background:var(--bg); color:var(--fg); font:14px/1.45 system-ui, sans-serif;
  margin:24px; max-width:1100px; }
code, pre { font-family: ui-monospace, monospace; font-size:12.5px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px;
  padding:10px 14px; margin:14px 0 6px; }
.card h3 { margin:0 0 6px; font-size:15px; }
.outcome-clean { color:var(--ok); } .outcome-terminated, .outcome-killed { color:var(--held); }
.cause { color:var(--warn); font-weight:600; }
.muted { color:var(--muted); }
ul { margin:4px 0; padding-left:20px; }
svg { display:block; margin-bottom:10px; }
svg text { fill:var(--fg); font:11px ui-monospace, monospace; }
.held { fill:var(--held); } .some { fill:var(--some); } .running { fill:var(--running); }
.waiting { fill:var(--waiting); } .free { fill:var(--free); }
.marker { stroke-width:1.5; } .marker-stop { stroke:var(--warn); }
.marker-grace { stroke:var(--held); stroke-dasharray:4 3; } .marker-kill { stroke:var(--held); }
.marker-exit { stroke:var(--fg); }
.legend span { display:inline-block; width:12px; height:10px; margin:0 4px 0 12px; }
"""


class HtmlRenderer:
    """One self-contained page; ``render_many`` puts several analyses (a rehearsal's runs)
    on one page."""

    name = "html"
    suffix = ".html"

    def render(self, analysis: Analysis, options: RenderOptions) -> str:
        return self.render_many([analysis], options)

    def render_many(self, analyses: Sequence[Analysis], options: RenderOptions) -> str:
        return _page(analyses)


def _page(sections: Sequence[Analysis]) -> str:
    title = ", ".join(_title(analysis.diagnosis) for analysis in sections)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>dora-doctor: {escape(title)}</title><style>{CSS}</style></head><body>",
    ]
    for analysis in sections:
        parts += _sections(analysis)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _sections(analysis: Analysis) -> List[str]:
    parts: List[str] = []
    report = analysis.diagnosis
    for analysed in analysis.dataflows:
        finding, dataflow = analysed.finding, analysed.recorded
        name, uuid = escape(finding.name or "dataflow"), escape(finding.uuid)
        parts.append(f"<h1>{name} <span class='muted'>{uuid}</span></h1>")
        versions = f"dora {report.dora_version or 'unknown'} · dora-doctor {report.tool_version}"
        parts.append(f"<p class='muted'>{escape(versions)}</p>")
        if finding.suggestion is not None:
            command = (
                f"<br><code>{escape(finding.suggestion.command)}</code>"
                if finding.suggestion.command
                else ""
            )
            parts.append(f"<p><b>Suggestion:</b> {escape(finding.suggestion.reason)}{command}</p>")
        parts.append(_legend())
        span = analysis.time_span(finding.uuid)
        for node in finding.nodes:
            parts.append(_card(node))
            if dataflow is not None and span is not None and analysed.shutdown is not None:
                parts.append(_lanes(analysis, dataflow, node, analysed, span))
    return parts


def _title(report: Diagnosis) -> str:
    return ", ".join(d.name or d.uuid for d in report.dataflows) or "report"


def _legend() -> str:
    swatches = "".join(
        f"<span data-state='{state}' style='background:var(--{state})'></span>"
        f"{escape(LANE_STATES[state])}"
        for state in (HELD, SOME, RUNNING, WAITING, NOT_HELD)
    )
    return (
        f"<p class='legend muted'>Each thread {swatches} · lines: stop requested, grace "
        "deadline (dashed), SIGKILL, process exit · hover a lane for the stack</p>"
    )


def _card(node: NodeFinding) -> str:
    stop = f" after {node.stop_duration_s:.2f} s" if node.stop_duration_s is not None else ""
    cause = f" · <span class='cause'>{escape(node.cause)}</span>" if node.cause else ""
    head = (
        f"<h3>{escape(node.id)} · <span class='outcome-{escape(node.outcome or 'unknown')}'>"
        f"{escape(node.outcome or 'unknown')}</span>{escape(stop)}{cause}</h3>"
    )
    items = [f"<li>{escape(e)}</li>" for e in node.evidence]
    for advice in node.advice:
        where = f" <code>{escape(advice.location)}</code>" if advice.location else ""
        items.append(f"<li><b>{escape(advice.kind)}:</b> {escape(advice.text)}{where}</li>")
    body = f"<ul>{''.join(items)}</ul>" if items else "<p class='muted'>Nothing to report.</p>"
    return f"<div class='card' data-node='{escape(node.id)}'>{head}{body}{_locals(node)}</div>"


def _locals(node: NodeFinding) -> str:
    """Local variables as the findings carry them (redacted unless asked otherwise)."""
    if not node.locals:
        return ""
    rows = []
    for heading, values in redaction.by_frame(node.locals).items():
        rows.append(f"<p class='muted'>{escape(heading)}</p><ul>")
        rows += [f"<li><code>{escape(v.name)} = {escape(v.value)}</code></li>" for v in values]
        rows.append("</ul>")
    return f"<details class='locals'><summary>Local variables</summary>{''.join(rows)}</details>"


def _lanes(
    analysis: Analysis,
    dataflow: Dataflow,
    node: NodeFinding,
    analysed: DataflowAnalysis,
    span: Tuple[float, float],
) -> str:
    start, end = span
    scale = WIDTH / max(end - start, 1e-6)
    threads: Dict[int, str] = {}
    for segment in analysis.recording.stacks:
        if segment.dataflow == dataflow.uuid and segment.node == node.id:
            for thread in segment.threads:
                threads.setdefault(thread.thread_id, thread.name)
    height = LANE_H * max(1, len(threads)) + 22
    out = [
        f"<svg class='lanes' data-node='{escape(node.id)}' width='{LABEL_W + WIDTH + 10}' "
        f"height='{height}' role='img' aria-label='threads of {escape(node.id)} over time'>"
    ]
    for row, (thread_id, name) in enumerate(threads.items()):
        y = 4 + row * LANE_H
        out.append(
            f"<g class='lane' data-node='{escape(node.id)}' data-thread='{escape(name)}'>"
            f"<text x='0' y='{y + 12}'>{escape(name[:20])}</text>"
        )
        for first, last, state, stack in _runs(
            analysis, dataflow.uuid, node.id, thread_id, start, end
        ):
            x = LABEL_W + first * WIDTH / BUCKETS
            w = (last - first + 1) * WIDTH / BUCKETS
            title = escape("\n".join(f"{f.function} ({f.file}:{f.line})" for f in reversed(stack)))
            out.append(
                f"<rect class='{state}' x='{x:.1f}' y='{y}' width='{w:.1f}' height='{LANE_H - 4}'>"
                f"<title>{escape(name)}\n{title}</title></rect>"
            )
        out.append("</g>")
    for index, (kind, when, label) in enumerate(_markers(analysed, node.id)):
        x = min(LABEL_W + WIDTH, max(LABEL_W, LABEL_W + (when - start) * scale))
        # labels alternate left and right of their line, so close markers stay readable
        anchor, dx = ("end", -3) if index % 2 else ("start", 3)
        out.append(
            f"<line class='marker marker-{kind}' data-marker='{kind}' x1='{x:.1f}' y1='0' "
            f"x2='{x:.1f}' y2='{height - 14}'><title>{escape(label)}</title></line>"
            f"<text x='{x + dx:.1f}' y='{height - 2}' text-anchor='{anchor}'>{escape(kind)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _markers(analysed: DataflowAnalysis, node: str) -> List[Tuple[str, float, str]]:
    marks: List[Tuple[str, float, str]] = []
    end = analysed.exit_of(node)
    for mark in analysed.dataflow_markers + ([end] if end is not None else []):
        marks.append((mark.kind, mark.time, _label(mark)))
    return marks


def _label(mark: Marker) -> str:
    if mark.kind == STOP:
        return f"STOP requested ({mark.source})"
    if mark.kind == GRACE:
        return f"grace deadline: {mark.sends}"
    if mark.kind == EXIT:
        return "process exit" + (f" (signal {mark.signal})" if mark.signal else "")
    assert mark.kind == KILL
    return "SIGKILL point"


def _runs(
    analysis: Analysis, uuid: str, node: str, thread_id: int, start: float, end: float
) -> List[Tuple[int, int, str, Stack]]:
    """(first bucket, last bucket, lane state, dominant stack), merged where alike."""
    step = (end - start) / BUCKETS or 1.0
    time_in: Dict[int, Dict[Stack, float]] = defaultdict(lambda: defaultdict(float))
    for segment in analysis.recording.stacks:
        if segment.dataflow != uuid or segment.node != node:
            continue
        for thread in segment.threads:
            if thread.thread_id != thread_id:
                continue
            for span in thread.spans:
                b0 = max(0, int((span.start - start) / step))
                b1 = min(BUCKETS - 1, int((span.end - start) / step))
                for b in range(b0, b1 + 1):
                    lo, hi = start + b * step, start + (b + 1) * step
                    time_in[b][span.stack] += max(0.0, min(hi, span.end) - max(lo, span.start))
    states = analysis.lane_states(uuid, node, thread_id, start, step, BUCKETS)
    runs: List[Tuple[int, int, str, Stack]] = []
    for b in sorted(time_in):
        stack = max(time_in[b], key=lambda s: time_in[b][s])
        state = states[b]
        if runs and runs[-1][1] == b - 1 and runs[-1][2] == state and runs[-1][3] == stack:
            runs[-1] = (runs[-1][0], b, state, stack)
        else:
            runs.append((b, b, state, stack))
    return runs
