"""The per-node summary printed at the end of a command, for people.

Every name, path and sentence that carries target text goes through ``consoles.text``:
shown, never interpreted (no markup, no control sequences).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Tuple

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dora_doctor.analysis import redaction
from dora_doctor.analysis.findings import DataflowFinding, Diagnosis, NodeFinding
from dora_doctor.analysis.result import Analysis
from dora_doctor.model import NOT_PYTHON, REMOTE
from dora_doctor.report import RenderOptions, consoles, timeline_text
from dora_doctor.report.consoles import text


class TerminalRenderer:
    """Tables, the text timeline and a card per node worth one, for a person at a terminal."""

    name = "terminal"
    suffix = ""

    def render(self, analysis: Analysis, options: RenderOptions) -> str:
        console = consoles.capture(options)
        draw(analysis.diagnosis, console, analysis)
        return consoles.captured(console)


def draw(report: Diagnosis, console: Console, analysis: Optional[Analysis] = None) -> None:
    """Draw on ``console``, with the text timelines of ``analysis`` where given: for
    renderers that put more around the summary (post-mortem)."""
    for index, dataflow in enumerate(report.dataflows):
        console.print(_dataflow(dataflow, report))
        if analysis is not None:
            analysed = analysis.dataflows[index]
            for row in timeline_text.lines(analysis, analysed, min(console.width, 100)):
                console.print(Text(row), soft_wrap=True)
        for node in dataflow.nodes:
            if _worth_a_card(node):
                console.print(_node_card(node))
        for node in dataflow.nodes:
            if node.skipped and node.skipped.startswith(REMOTE):
                console.print(text(f"{node.id}: {node.skipped}", style="yellow"))
        if dataflow.suggestion is not None:
            console.print(text(f"Suggestion: {dataflow.suggestion.reason}", style="bold"))
            if dataflow.suggestion.command:
                console.print(text(f"  {dataflow.suggestion.command}"))
    if report.skipped_records and report.skipped_records.count:
        console.print(text(report.skipped_records.summary(), style="yellow"))
    if report.recording:
        console.print(text(f"Recording: {short_path(report.recording)}", style="dim"))


def short_path(path: str) -> str:
    """Paths as a person reads them: relative to here when below it, ~ for home."""
    if not path or path.startswith("<"):
        return path
    try:
        relative = os.path.relpath(path)
    except ValueError:
        relative = path
    if not relative.startswith(".."):
        return relative
    home = str(Path.home())
    return "~" + path[len(home) :] if path.startswith(home + os.sep) else path


def _where(file: str, line: Optional[int]) -> str:
    if not file:
        return ""
    return f"{short_path(file)}:{line}" if line else short_path(file)


# Without a stop to diagnose, a node is worth its card when it kept the GIL this busy.
BUSY_GIL_SHARE = 0.1


def _worth_a_card(node: NodeFinding) -> bool:
    """Nodes that stopped well, or idled, need no more than their table row; local
    variables, asked for with --locals, are shown wherever they were read."""
    if node.locals or node.last_dump:
        return True
    if not node.python or node.skipped:
        return bool(node.evidence) and node.outcome not in ("clean", "running", None)
    if node.cause is None:
        return (node.gil.held_share or 0.0) >= BUSY_GIL_SHARE
    return node.cause != "none"


def _share(value: float) -> str:
    """A share as a whole percent; below 0.5 % a holder that did hold the GIL is "<1%", never
    "0%" (which reads as "never held it")."""
    return "<1%" if 0 < value < 0.005 else f"{value:.0%}"


def _dataflow(dataflow: DataflowFinding, report: Diagnosis) -> Table:
    title = (
        f"{dataflow.name or dataflow.uuid} ({dataflow.uuid}) · dora {report.dora_version or '?'}"
    )
    table = Table(title=text(title, style="table.title"), title_justify="left")
    machines = any(node.machine for node in dataflow.nodes)
    columns: Tuple[str, ...] = ("node", "outcome", "stop→exit", "cause", "GIL held", "samples")
    if machines:
        columns = ("node", "machine", *columns[1:])
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("stop→exit", "samples", "GIL held") else "left",
            no_wrap=column != "cause",
        )
    for node in dataflow.nodes:
        stop = f"{node.stop_duration_s:.2f} s" if node.stop_duration_s is not None else "–"
        gil = _share(node.gil.held_share) if node.gil.held_share is not None else "–"
        if node.skipped == NOT_PYTHON:
            why = NOT_PYTHON
        elif node.skipped and node.skipped.startswith(REMOTE):
            why = node.skipped.split(":", 1)[0]  # what to do about it follows the table
        elif node.skipped:
            why = f"not sampled: {node.skipped}"
        else:
            why = node.cause or "–"
        cells = [node.id, node.outcome or "–", stop, why, gil, f"{node.samples:,}"]
        if machines:
            cells.insert(1, node.machine or "–")
        table.add_row(*(text(cell) for cell in cells))
    return table


_DEADLINE = {"sigterm": "before the SIGTERM", "sigkill": "before the SIGKILL"}


def _last_dump(node: NodeFinding) -> List[Text]:
    """What the node was doing at its last dump before dora ended it (native frames too)."""
    dump = node.last_dump
    if dump is None:
        return []
    when = []
    if dump.seconds_after_stop is not None:
        when.append(f"{dump.seconds_after_stop:.2f} s after the stop")
    if dump.seconds_before_end is not None:
        when.append(f"{dump.seconds_before_end:.2f} s before it ended")
    deadline = _DEADLINE.get(dump.before)
    if deadline:
        when.append(deadline)
    lines = [text(f"When dora ended it ({', '.join(when)}):", style="bold")]
    if dump.error:
        lines.append(text(f"  the last dump failed: {dump.error}"))
    for thread in dump.threads[:3]:
        marks = " [GIL]" if thread.owns_gil else (" [active]" if thread.active else " [idle]")
        lines.append(text(f"  {thread.thread}{marks}"))
        lines += [text(f"    {shorten_paths(frame)}") for frame in thread.frames[:5]]
    return lines


def _node_card(node: NodeFinding) -> Panel:
    lines: List[Text] = []
    if node.gil.holders:
        lines.append(Text("GIL held by:", style="bold"))
        for h in node.gil.holders[:3]:
            native = " (one C call)" if h.native else ""
            operator = f" (operator `{h.operator}`)" if h.operator else ""
            lines.append(
                text(
                    f"  {_share(h.share):>4}  {h.thread}{operator}: {h.function}{native}  "
                    f"{_where(h.file, h.line)}"
                )
            )
    for item in node.evidence:
        lines.append(text(f"• {shorten_paths(item)}"))
    for advice in node.advice:
        where = f" ({_shorten_location(advice.location)})" if advice.location else ""
        lines.append(text(f"→ {advice.kind}: {advice.text}{where}", style="green"))
    lines += _last_dump(node)
    for heading, values in redaction.by_frame(node.locals or []).items():
        lines.append(text(f"Local variables {shorten_paths(heading)}:", style="bold"))
        lines += [text(f"  {v.name} = {v.value}") for v in values]
    title = f"{node.id} · pid {node.pid or '?'} · Python {node.python_version or '?'}"
    if node.machine:
        title += f" · machine {node.machine}"
    if node.sample_rate_hz:
        title += f" · {node.samples:,} samples at {node.sample_rate_hz:.0f}/s"
    return Panel(Group(*lines), title=text(title), title_align="left", expand=False)


def _shorten_location(location: str) -> str:
    file, _, line = location.rpartition(":")
    return _where(file, int(line)) if file and line.isdigit() else short_path(location)


def shorten_paths(text: str) -> str:
    here = os.getcwd() + os.sep
    home = str(Path.home()) + os.sep
    return text.replace(here, "").replace(home, "~" + os.sep)
