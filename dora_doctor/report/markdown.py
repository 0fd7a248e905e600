"""A Markdown report that renders well in a GitHub issue: what a dora maintainer needs.

Nothing secret goes in: no environment variables, and no absolute paths (they name users
and machines) unless ``show_paths`` is asked for; a path becomes ``…/folder/file.py``. Local
variables (``inspect --locals``) come as the findings carry them: redacted unless the report
was built with ``show_locals``.
"""

from __future__ import annotations

import platform
import re
from collections import Counter
from typing import List, Optional

from dora_doctor.analysis import redaction
from dora_doctor.analysis.findings import Diagnosis, NodeFinding
from dora_doctor.analysis.result import Analysis
from dora_doctor.model import Stack
from dora_doctor.recording.jsonl import Recording
from dora_doctor.report import RenderOptions

_ABSOLUTE = re.compile(r"(?<![\w.])(/[^\s:()`'\",]+)")
MAX_STACK_FRAMES = 12


def shorten(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return "…/" + "/".join(parts[-2:]) if len(parts) > 2 else path


def _hide_paths(text: str, show_paths: bool) -> str:
    return text if show_paths else _ABSOLUTE.sub(lambda m: shorten(m.group(1)), text)


class MarkdownRenderer:
    name = "markdown"
    suffix = ".md"

    def render(self, analysis: Analysis, options: RenderOptions) -> str:
        return _render(analysis.diagnosis, analysis.recording, options.show_paths)


def _render(report: Diagnosis, recording: Optional[Recording], show_paths: bool) -> str:
    out: List[str] = []

    def hide(text: str) -> str:
        return _hide_paths(text, show_paths)

    for dataflow in report.dataflows:
        out.append(f"## dora-doctor: {dataflow.name or 'dataflow'} (`{dataflow.uuid}`)")
        out.append("")
        out.append(_environment(report, dataflow.nodes, recording))
        out.append("")
        out.append("| node | outcome | stop→exit | cause | GIL holder in the shutdown |")
        out.append("|---|---|---|---|---|")
        for node in dataflow.nodes:
            out.append(
                "| {id} | {outcome} | {stop} | {cause} | {holder} |".format(
                    id=node.id,
                    outcome=node.outcome or "–",
                    stop=f"{node.stop_duration_s:.2f} s"
                    if node.stop_duration_s is not None
                    else "–",
                    cause=node.cause or ("not Python" if not node.python else "–"),
                    holder=hide(_holder(node)),
                )
            )
        out.append("")
        if dataflow.suggestion is not None:
            out.append(f"**Suggestion:** {hide(dataflow.suggestion.reason)}")
            if dataflow.suggestion.command:
                out += ["", "```sh", dataflow.suggestion.command, "```"]
            out.append("")
        for node in dataflow.nodes:
            if not node.evidence and not node.advice and not node.locals:
                continue
            out.append(f"### {node.id}: {node.outcome or 'unknown'}, {node.cause or 'no cause'}")
            out.append("")
            out += [f"- {hide(item)}" for item in node.evidence]
            for advice in node.advice:
                where = f" (`{hide(advice.location)}`)" if advice.location else ""
                out.append(f"- **{advice.kind}:** {hide(advice.text)}{where}")
            stack = _holder_stack(recording, dataflow.uuid, node) if recording else None
            if stack:
                holder = node.gil.holders[0].thread
                out += [
                    "",
                    f"<details><summary>Stack of {holder} while it held the GIL</summary>",
                    "",
                ]
                out.append("```")
                for frame in reversed(stack[-MAX_STACK_FRAMES:]):
                    out.append(hide(f"{frame.function} ({frame.file}:{frame.line})"))
                out += ["```", "", "</details>"]
            if node.locals:
                out += ["", "<details><summary>Local variables</summary>", "", "```"]
                for heading, values in redaction.by_frame(node.locals).items():
                    out.append(hide(heading))
                    out += [f"    {v.name} = {v.value}" for v in values]
                out += ["```", "", "</details>"]
            out.append("")
    out.append(f"<sub>dora-doctor {report.tool_version} · report schema {report.schema}</sub>")
    return "\n".join(out).rstrip() + "\n"


def _environment(
    report: Diagnosis, nodes: List[NodeFinding], recording: Optional[Recording]
) -> str:
    pythons = sorted({n.python_version for n in nodes if n.python_version})
    host = recording.header.get("host", {}) if recording else {}
    system = (
        f"{host.get('system', '?')} {host.get('machine', '')}".strip()
        if host
        else f"{platform.system()} {platform.machine()} (where the report was made)"
    )
    return (
        f"dora {report.dora_version or 'unknown'} · Python {', '.join(pythons) or 'unknown'} · "
        f"{system}"
    )


def _holder(node: NodeFinding) -> str:
    if not node.gil.holders:
        return "–"
    top = node.gil.holders[0]
    native = ", one C call" if top.native else ""
    return f"{top.thread} in `{top.function}` (`{top.file}:{top.line}`), {top.share:.0%}{native}"


def _holder_stack(recording: Recording, dataflow: str, node: NodeFinding) -> Optional[Stack]:
    """The stack the top holder held the GIL in most often."""
    if not node.gil.holders:
        return None
    top = node.gil.holders[0]
    counts: Counter[Stack] = Counter()
    for segment in recording.gil:
        if segment.dataflow != dataflow or segment.node != node.id:
            continue
        for held in segment.stacks:
            if held.thread == top.thread and held.stack and held.stack[-1].function == top.function:
                counts[held.stack] += held.count
    return counts.most_common(1)[0][0] if counts else None
