"""`dora-doctor report`: analyse a recording again and render it in any format."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dora_doctor.commands import common
from dora_doctor.commands.common import refuse_existing, write_output
from dora_doctor.report import consoles


def command(
    recording: Path = typer.Argument(..., help="A recording made with `inspect --record`."),
    format: Optional[str] = typer.Option(
        None,
        "--format",
        "-f",
        help="terminal, json, markdown, html, perfetto or timeline (default: from --output's "
        "suffix: .md markdown, .html html, .json perfetto, .txt timeline; else terminal).",
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
    from dora_doctor.analysis.result import analyse
    from dora_doctor.recording.reader import ensure_usable, read_recording
    from dora_doctor.report import registry

    renderer = registry.choose(format, output, as_json)
    refuse_existing(output)
    loaded = ensure_usable(read_recording(recording))
    analysis = analyse(loaded, show_locals=show_locals)
    analysis.diagnosis.recording = str(recording)
    analysis.diagnosis.skipped_records = loaded.skipped_records
    text = renderer.render(analysis, consoles.render_options(show_paths))
    if output is None:
        sys.stdout.write(text)
    else:
        write_output(output, text)
