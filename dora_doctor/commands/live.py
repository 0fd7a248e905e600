"""The table ``inspect`` keeps on screen while it samples."""

from __future__ import annotations

import time

from rich.table import Table

from dora_doctor.capture.session import LiveState
from dora_doctor.report.consoles import text
from dora_doctor.report.terminal import shorten_paths


def table(state: LiveState) -> Table:
    elapsed = time.time() - state.started
    title = (
        f"dora-doctor inspect · {state.dataflow.label} · dora {state.dora_version or '?'}"
        f" · {elapsed:.0f} s · Ctrl-C to finish"
    )
    if state.stop_requested:
        title += f" · STOP sent {time.time() - state.stop_requested:.1f} s ago"
    grid = Table(title=text(title, "table.title"), title_justify="left", expand=False)
    grid.add_column("node")
    grid.add_column("PID", justify="right")
    grid.add_column("Python")
    grid.add_column("samples", justify="right")
    grid.add_column("GIL held", justify="right")
    grid.add_column("now (GIL holder, else main thread)", overflow="fold")
    for live in state.nodes.values():
        node = live.node
        python = node.python_version or ("yes" if node.python else "not Python")
        gil = f"{live.gil_share:.0%}" if live.gil_share is not None else "–"
        now = live.top_frame or live.state
        if live.state.startswith(("exited", "error", "skipped")):
            now = live.state
        cells = [
            node.id,
            str(node.sample_pid or node.pid or "–"),
            python,
            str(live.samples),
            gil,
            shorten_paths(now),
        ]
        grid.add_row(*(text(cell) for cell in cells))
    return grid
