"""`dora-doctor report`: analyse a recording again and render it in any format."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dora_doctor.commands import common
from dora_doctor.commands.common import refuse_existing, write_output
from dora_doctor.errors import DoctorError
from dora_doctor.report import consoles


def command(
    recording: Path = typer.Argument(..., help="A recording made with `inspect --record`."),
    format: Optional[str] = typer.Option(
        None,
        "--format",
        "-f",
        help="terminal, json, markdown, html or perfetto (default: from --output's suffix: "
        ".md markdown, .html html, .json perfetto; else terminal).",
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write to this file (never overwritten) instead of stdout."
    ),
    show_paths: bool = typer.Option(
        False, "--show-paths", help="Markdown: keep absolute paths (they name users and hosts)."
    ),
    show_locals: bool = typer.Option(
        False,
        "--show-locals",
        help="Show the values of local variables recorded with `inspect --locals` (they may "
        "hold secrets; by default every format shows names and '<redacted: N chars>').",
    ),
    as_json: bool = common.JSON,
) -> None:
    """Analyse a recording again, without any process, and render it.

    \b
    Examples:
      dora-doctor report robot.ddrec
      dora-doctor report robot.ddrec --format markdown        # paste into a GitHub issue
      dora-doctor report robot.ddrec -o shutdown.html         # open in any browser, offline
      dora-doctor report robot.ddrec -o trace.json            # open in ui.perfetto.dev
      dora-doctor report robot.ddrec --json
    """
    from dora_doctor.analysis import diagnose
    from dora_doctor.recording.reader import ensure_usable, read_recording
    from dora_doctor.report import html, markdown, perfetto, terminal
    from dora_doctor.report import json as json_report

    chosen = "json" if as_json else (format or _format_from_suffix(output))
    if chosen not in ("terminal", "json", "markdown", "html", "perfetto"):
        raise DoctorError(f"--format {chosen}: choose terminal, json, markdown, html or perfetto")
    refuse_existing(output)
    loaded = ensure_usable(read_recording(recording))
    result = diagnose.report_from_recording(loaded, show_locals=show_locals)
    result.recording = str(recording)
    result.skipped_records = loaded.skipped_records
    if chosen == "terminal":
        if output is not None:
            raise DoctorError("--format terminal prints to the screen: leave out --output")
        terminal.render(result, consoles.out(), loaded)
        return
    text = {
        "json": lambda: json_report.render(result),
        "markdown": lambda: markdown.render(result, loaded, show_paths),
        "html": lambda: html.render(result, loaded),
        "perfetto": lambda: perfetto.render(loaded, show_locals),
    }[chosen]()
    if output is None:
        sys.stdout.write(text)
    else:
        write_output(output, text)


def _format_from_suffix(output: Optional[Path]) -> str:
    if output is None:
        return "terminal"
    return {".md": "markdown", ".html": "html", ".json": "perfetto"}.get(output.suffix, "terminal")
