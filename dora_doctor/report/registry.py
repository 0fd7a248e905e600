"""Which renderers exist, per subject, and choosing one by name or by a file's suffix.

A command asks here instead of keeping its own table, so a new format is one class and one
line below, and ``--format``, ``--output``'s suffix and the help text stay in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, TypeVar

from dora_doctor.analysis.postmortem import Postmortem
from dora_doctor.analysis.rehearsal import Rehearsal
from dora_doctor.analysis.result import Analysis
from dora_doctor.errors import DoctorError
from dora_doctor.report import Renderer
from dora_doctor.report.html import HtmlRenderer
from dora_doctor.report.json import JsonRenderer
from dora_doctor.report.markdown import MarkdownRenderer
from dora_doctor.report.perfetto import PerfettoRenderer
from dora_doctor.report.postmortem import PostmortemJson, PostmortemTerminal
from dora_doctor.report.rehearsal import (
    Check,
    CheckJson,
    RehearsalJson,
    RehearsalTerminal,
    RunsTerminal,
)
from dora_doctor.report.terminal import TerminalRenderer
from dora_doctor.report.timeline_text import TimelineRenderer

S = TypeVar("S")

TERMINAL = TerminalRenderer()
JSON = JsonRenderer()
MARKDOWN = MarkdownRenderer()
HTML = HtmlRenderer()
# Before JSON: a .json output file has meant a Perfetto trace since there was one.
PERFETTO = PerfettoRenderer()
TIMELINE = TimelineRenderer()

REPORT: Sequence[Renderer[Analysis]] = (TERMINAL, JSON, MARKDOWN, HTML, PERFETTO, TIMELINE)
_BY_SUFFIX: Sequence[Renderer[Analysis]] = (MARKDOWN, HTML, PERFETTO, TIMELINE)

POSTMORTEM: Dict[str, Renderer[Postmortem]] = {
    r.name: r for r in (PostmortemTerminal(), PostmortemJson())
}
REHEARSAL: Dict[str, Renderer[Rehearsal]] = {
    r.name: r for r in (RehearsalTerminal(), RehearsalJson())
}
CHECK_RUNS: Renderer[Rehearsal] = RunsTerminal()
CHECK_JSON: Renderer[Check] = CheckJson()

__all__ = ["Check", "REPORT", "choose"]


def names(renderers: Sequence[Renderer[S]]) -> str:
    """ "a, b or c", for help and errors."""
    listed = [r.name for r in renderers]
    return ", ".join(listed[:-1]) + " or " + listed[-1]


def by_name(name: str) -> Renderer[Analysis]:
    for renderer in REPORT:
        if renderer.name == name:
            return renderer
    raise DoctorError(f"--format {name}: choose {names(REPORT)}")


def by_suffix(output: Optional[Path]) -> Optional[Renderer[Analysis]]:
    """The renderer an output file's suffix asks for, if it asks for one."""
    if output is None:
        return None
    return next((r for r in _BY_SUFFIX if r.suffix == output.suffix), None)


def choose(format: Optional[str], output: Optional[Path], as_json: bool) -> Renderer[Analysis]:
    """``--json``, ``--format`` or the output's suffix, in that order; two that disagree are
    refused, never one silently preferred (JSON written into an .html file)."""
    if as_json and format is not None and format != JSON.name:
        raise DoctorError(f"--json and --format {format} disagree: give one of them")
    implied = by_suffix(output)
    if as_json or format is not None:
        chosen = by_name(JSON.name if as_json else str(format))
    else:
        chosen = implied or TERMINAL
    if output is not None and chosen is TERMINAL:
        raise DoctorError("--format terminal prints to the screen: leave out --output")
    if implied is not None and output is not None and output.suffix != chosen.suffix:
        asked = "--json" if as_json else f"--format {format}"
        raise DoctorError(
            f"{asked} and --output {output.name} disagree ({output.suffix} is "
            f"{implied.name}): change one of them"
        )
    return chosen
