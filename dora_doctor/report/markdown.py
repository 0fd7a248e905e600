"""A Markdown report that renders well in a GitHub issue: what a dora maintainer needs.

Nothing secret goes in: no environment variables, and no absolute paths (they name users
and machines) unless ``show_paths`` is asked for; a path becomes ``…/folder/file.py``. Local
variables (``inspect --locals``) come as the findings carry them: redacted unless the report
was built with ``show_locals``.

Names, paths and log lines come from the target and the report gets pasted into issues, so
none of it may become Markdown: :func:`prose` escapes text (no links, no raw HTML, no
emphasis, no broken table rows), :func:`code` makes a code span whose fence outlasts any
backticks inside, :func:`fence` a code block no line can close, and control characters are
shown escaped as on the terminal.
"""

from __future__ import annotations

import html
import platform
import re
from collections import Counter
from typing import Callable, List, Optional

from dora_doctor.analysis import redaction
from dora_doctor.analysis.findings import Diagnosis, NodeFinding
from dora_doctor.analysis.result import Analysis
from dora_doctor.model import NOT_PYTHON, Stack
from dora_doctor.recording.model import Recording
from dora_doctor.report import RenderOptions
from dora_doctor.textsafe import for_terminal

_ABSOLUTE = re.compile(r"(?<![\w.])(/[^\s:()`'\",]+)")
MAX_STACK_FRAMES = 12


# Characters that mean something inline in CommonMark or GFM wherever they stand: escapes,
# code spans, emphasis, strikethrough, links and images, raw HTML and autolinks, entities,
# table cells, and a heading's closing sequence. "_" is escaped where it could open or close
# emphasis; between two letters or digits it cannot, and crunch_numbers stays readable.
_SPECIAL = re.compile(r"[\\`*~\[\]<>&|#]|(?<![^\W_])_|_(?![^\W_])")
_BACKTICKS = re.compile(r"`+")


def prose(text: str) -> str:
    """Target text as Markdown text that renders as itself, on one line."""
    return _SPECIAL.sub(lambda m: "\\" + m.group(), for_terminal(text))


_SPAN = re.compile(r"`([^`]+)`")


def sentence(text: str) -> str:
    """Like :func:`prose`, but a `span` in backticks (the wording quotes code that way)
    stays a code span. Target text inside the sentence may hold backticks too: every part is
    escaped for where it lands, so the worst it can do is show some words as code."""
    out, at = [], 0
    for match in _SPAN.finditer(text):
        out += [prose(text[at : match.start()]), code(match.group(1))]
        at = match.end()
    return "".join(out) + prose(text[at:])


def code(text: str, cell: bool = False) -> str:
    """A code span showing ``text`` as it is (controls escaped), in a table cell if ``cell``:
    GFM splits cells at a pipe even inside a code span, unless it is escaped."""
    content = for_terminal(text)
    if cell:
        content = content.replace("|", "\\|")
    ticks = "`" * (max((len(run) for run in _BACKTICKS.findall(content)), default=0) + 1)
    if content.startswith(("`", " ")) or content.endswith(("`", " ")) or not content:
        content = f" {content} "
    return f"{ticks}{content}{ticks}"


def fence(lines: List[str], info: str = "") -> List[str]:
    """A fenced code block of ``lines`` (controls escaped, so each stays one line), fenced
    with more backticks than any line holds, so no line can close it."""
    body = [for_terminal(line) for line in lines]
    longest = max((len(run) for line in body for run in _BACKTICKS.findall(line)), default=0)
    ticks = "`" * max(3, longest + 1)
    return [ticks + info, *body, ticks]


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
        name = prose(dataflow.name) if dataflow.name else "dataflow"
        out.append(f"## dora-doctor: {name} ({code(dataflow.uuid)})")
        out.append("")
        out.append(_environment(report, dataflow.nodes, recording))
        out.append("")
        out.append("| node | outcome | stop→exit | cause | GIL holder in the shutdown |")
        out.append("|---|---|---|---|---|")
        for node in dataflow.nodes:
            out.append(
                "| {id} | {outcome} | {stop} | {cause} | {holder} |".format(
                    id=prose(node.id),
                    outcome=prose(node.outcome or "–"),
                    stop=f"{node.stop_duration_s:.2f} s"
                    if node.stop_duration_s is not None
                    else "–",
                    cause=prose(node.cause or (NOT_PYTHON if node.skipped == NOT_PYTHON else "–")),
                    holder=_holder(node, hide),
                )
            )
        out.append("")
        if dataflow.suggestion is not None:
            out.append(f"**Suggestion:** {sentence(hide(dataflow.suggestion.reason))}")
            if dataflow.suggestion.command:
                out += ["", *fence([dataflow.suggestion.command], "sh")]
            out.append("")
        for node in dataflow.nodes:
            if not node.evidence and not node.advice and not node.locals:
                continue
            outcome, cause = node.outcome or "unknown", node.cause or "no cause"
            out.append(f"### {prose(node.id)}: {prose(outcome)}, {prose(cause)}")
            out.append("")
            out += [f"- {sentence(hide(item))}" for item in node.evidence]
            for advice in node.advice:
                where = f" ({code(hide(advice.location))})" if advice.location else ""
                out.append(f"- **{prose(advice.kind)}:** {sentence(hide(advice.text))}{where}")
            stack = _holder_stack(recording, dataflow.uuid, node) if recording else None
            if stack:
                holder = html.escape(for_terminal(node.gil.holders[0].thread))
                out += [
                    "",
                    f"<details><summary>Stack of {holder} while it held the GIL</summary>",
                    "",
                ]
                frames = reversed(stack[-MAX_STACK_FRAMES:])
                out += fence([hide(f"{f.function} ({f.file}:{f.line})") for f in frames])
                out += ["", "</details>"]
            if node.locals:
                out += ["", "<details><summary>Local variables</summary>", ""]
                values = []
                for heading, group in redaction.by_frame(node.locals).items():
                    values.append(hide(heading))
                    values += [f"    {v.name} = {v.value}" for v in group]
                out += [*fence(values), "", "</details>"]
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
    return prose(
        f"dora {report.dora_version or 'unknown'} · Python {', '.join(pythons) or 'unknown'} · "
        f"{system}"
    )


def _holder(node: NodeFinding, hide: Callable[[str], str]) -> str:
    """The top holder, for a table cell."""
    if not node.gil.holders:
        return "–"
    top = node.gil.holders[0]
    native = ", one C call" if top.native else ""
    function, where = code(top.function, cell=True), code(hide(f"{top.file}:{top.line}"), cell=True)
    return f"{prose(top.thread)} in {function} ({where}), {top.share:.0%}{native}"


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
