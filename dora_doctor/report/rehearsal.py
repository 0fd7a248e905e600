"""Rendering ``tune-grace`` and ``check`` results: per-run stop times, statistics, suggestion."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Dict, List

from rich.console import Console
from rich.table import Table

from dora_doctor import __version__
from dora_doctor.analysis.grace import NodeStats
from dora_doctor.analysis.rehearsal import Rehearsal
from dora_doctor.report import RenderOptions, consoles
from dora_doctor.report.consoles import text

SCHEMA = "dora-doctor.tune-grace/1"


class RehearsalTerminal:
    """tune-grace for a person: stop times per run, statistics, code advice, suggestion."""

    name = "terminal"
    suffix = ""

    def render(self, rehearsal: Rehearsal, options: RenderOptions) -> str:
        console = consoles.capture(options)
        _draw(rehearsal, console)
        return consoles.captured(console)


class RehearsalJson:
    name = "json"
    suffix = ".json"

    def render(self, rehearsal: Rehearsal, options: RenderOptions) -> str:
        return json.dumps(to_dict(rehearsal), indent=2) + "\n"


class RunsTerminal:
    """Only the stop times per run (``check``: the verdict is its exit code)."""

    name = "terminal"
    suffix = ""

    def render(self, rehearsal: Rehearsal, options: RenderOptions) -> str:
        console = consoles.capture(options)
        console.print(runs_table(rehearsal))
        return consoles.captured(console)


@dataclass
class Check:
    """A rehearsal judged against the grace the user intends to use."""

    rehearsal: Rehearsal
    grace: str
    failures: List[str]


class CheckJson:
    """tune-grace's JSON with the verdict added under ``check``."""

    name = "json"
    suffix = ".json"

    def render(self, check: Check, options: RenderOptions) -> str:
        data = to_dict(check.rehearsal)
        data["check"] = {
            "grace": check.grace,
            "passed": not check.failures,
            "failures": check.failures,
        }
        return json.dumps(data, indent=2) + "\n"


def runs_table(rehearsal: Rehearsal) -> Table:
    """Stop→exit per node and run; "≥" marks a run dora ended (censored)."""
    table = Table(
        title=text(f"stop → exit per node · {rehearsal.dataflow_file.name}", "table.title"),
        title_justify="left",
    )
    table.add_column("node")
    for run in rehearsal.runs:
        table.add_column(f"run {run.index}", justify="right")
    for node_id in _node_ids(rehearsal):
        cells = []
        for run in rehearsal.runs:
            node = next((n for n in run.nodes if n.id == node_id), None)
            if node is None or node.stop_duration_s is None:
                cells.append("–")
                continue
            ended = node.outcome in ("terminated", "killed", "running")
            mark = "≥ " if ended else ""
            cause = f" {node.cause}" if node.cause not in (None, "none") else ""
            cells.append(f"{mark}{node.stop_duration_s:.2f} s{cause}")
        table.add_row(*(text(cell) for cell in [node_id, *cells]))
    return table


def stats_table(stats: List[NodeStats]) -> Table:
    table = Table(title="per node", title_justify="left")
    for column in ("node", "runs", "p50", "p95", "max", "censored", "causes"):
        table.add_column(column, justify="left" if column in ("node", "causes") else "right")
    for s in stats:
        cells = [
            s.node,
            str(s.runs),
            _seconds(s.p50),
            _seconds(s.p95),
            _seconds(s.max),
            f"{len(s.censored)} × ≥ {min(s.censored):.2f} s" if s.censored else "–",
            ", ".join(sorted(set(s.causes))) or "–",
        ]
        table.add_row(*(text(cell) for cell in cells))
    return table


def _draw(rehearsal: Rehearsal, console: Console) -> None:
    if rehearsal.cleaned_up:
        console.print(
            text(f"Stopped leftovers of an earlier rehearsal: {', '.join(rehearsal.cleaned_up)}")
        )
    console.print(runs_table(rehearsal))
    if rehearsal.ended_early:
        console.print(text(rehearsal.ended_early, style="yellow"))
    stats = rehearsal.stats()
    console.print(stats_table(stats))
    advice_seen = set()
    for run in rehearsal.runs:
        for node in run.nodes:
            for advice in node.advice:
                key = (node.id, advice.kind, advice.location)
                if advice.kind == "code" and key not in advice_seen:
                    advice_seen.add(key)
                    where = f" ({advice.location})" if advice.location else ""
                    console.print(text(f"{node.id}: {advice.text}{where}", style="green"))
    suggestion = rehearsal.suggestion()
    console.print(text(f"Suggestion: {suggestion.reason}", style="bold"))
    if suggestion.command:
        console.print(text(f"  {suggestion.command}"))


def to_dict(rehearsal: Rehearsal) -> Dict[str, Any]:
    suggestion = rehearsal.suggestion()
    return {
        "schema": SCHEMA,
        "tool_version": __version__,
        "dora_version": rehearsal.dora_version,
        "dataflow_file": str(rehearsal.dataflow_file),
        "runs_requested": rehearsal.options.runs,
        "warmup_s": rehearsal.options.warmup_s,
        "stop_grace_s": rehearsal.options.stop_grace_s,
        "margin": rehearsal.options.margin,
        "cleaned_up": rehearsal.cleaned_up,
        "ended_early": rehearsal.ended_early,
        "runs": [
            {
                "index": run.index,
                "name": run.name,
                "uuid": run.uuid,
                "recording": str(run.recording) if run.recording else None,
                "report": run.report.to_dict(),
            }
            for run in rehearsal.runs
        ],
        "nodes": [
            {
                **{k: v for k, v in asdict(s).items() if k != "causes"},
                "causes": {c: s.causes.count(c) for c in sorted(set(s.causes))},
            }
            for s in rehearsal.stats()
        ],
        "suggestion": asdict(suggestion),
        "wall_s": round(rehearsal.wall_s, 3),
        "overhead_ratio": rehearsal.overhead_ratio(),
    }


def _node_ids(rehearsal: Rehearsal) -> List[str]:
    seen: List[str] = []
    for run in rehearsal.runs:
        for node in run.nodes:
            if node.id not in seen:
                seen.append(node.id)
    return seen


def _seconds(value: object) -> str:
    return f"{value:.2f} s" if isinstance(value, float) else "–"
