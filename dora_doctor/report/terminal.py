"""The per-node summary printed at the end of a command, for people."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dora_doctor.findings import DataflowFinding, NodeFinding, Report


def render(report: Report, console: Console) -> None:
    for dataflow in report.dataflows:
        console.print(_dataflow(dataflow, report))
        for node in dataflow.nodes:
            if node.python and not node.skipped:
                console.print(_node_card(node))
        if dataflow.suggestion is not None:
            console.print(Text(f"Suggestion: {dataflow.suggestion.reason}", style="bold"))
            if dataflow.suggestion.command:
                console.print(Text(f"  {dataflow.suggestion.command}"))
    if report.recording:
        console.print(Text(f"Recording kept in {report.recording}", style="dim"))


def _dataflow(dataflow: DataflowFinding, report: Report) -> Table:
    title = (
        f"{dataflow.name or dataflow.uuid} ({dataflow.uuid}) · dora {report.dora_version or '?'}"
    )
    table = Table(title=title, title_justify="left")
    for column in (
        "node",
        "PID",
        "Python",
        "samples",
        "rate",
        "GIL held",
        "outcome",
        "stop→exit",
        "cause",
    ):
        table.add_column(
            column,
            justify="right" if column in ("PID", "samples", "rate", "stop→exit") else "left",
            overflow="fold",
        )
    for node in dataflow.nodes:
        table.add_row(
            node.id,
            str(node.pid or "–"),
            node.python_version or ("yes" if node.python else "not Python"),
            str(node.samples) if node.python else "–",
            f"{node.sample_rate_hz:.0f}/s" if node.sample_rate_hz else "–",
            f"{node.gil.held_share:.0%}" if node.gil.held_share is not None else "–",
            node.outcome or "–",
            f"{node.stop_duration_s:.2f} s" if node.stop_duration_s is not None else "–",
            node.cause or (node.skipped or "–"),
        )
    return table


def _node_card(node: NodeFinding) -> Panel:
    lines = []
    if node.gil.holders:
        lines.append(Text("GIL held by:", style="bold"))
        for h in node.gil.holders:
            native = " (inside a C call)" if h.native else ""
            lines.append(
                Text(f"  {h.share:6.1%}  {h.thread}: {h.function}  {h.file}:{h.line}{native}")
            )
    elif node.samples:
        lines.append(Text("No thread was seen holding the GIL."))
    else:
        lines.append(Text("No samples were taken."))
    for item in node.evidence:
        lines.append(Text(f"• {item}"))
    for advice in node.advice:
        where = f" ({advice.location})" if advice.location else ""
        lines.append(Text(f"→ [{advice.kind}] {advice.text}{where}", style="green"))
    return Panel(Group(*lines), title=f"{node.id}", title_align="left", expand=False)
