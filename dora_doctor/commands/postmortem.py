"""`dora-doctor postmortem`: read dora's logs after the fact."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from dora_doctor.commands import common, history
from dora_doctor.commands.common import refuse_existing, write_output
from dora_doctor.errors import DoctorError
from dora_doctor.report import consoles


def command(
    inputs: List[str] = typer.Argument(
        ..., help="Log files, out/ directories, .gz files, or - for standard input."
    ),
    recording: Optional[Path] = typer.Option(
        None, "--recording", "-r", help="A recording of the same run, for the GIL holders."
    ),
    html_file: Optional[Path] = typer.Option(
        None, "--html", help="Also write the report as an HTML page (lanes need --recording)."
    ),
    as_json: bool = common.JSON,
    db: Optional[Path] = history.DB,
    no_history: bool = history.NO_HISTORY,
) -> None:
    """Read dora's logs after the fact: every stop, every node's end, grace kills and why.

    Reads coordinator and daemon logs (dora ≥ 0.4 JSON lines or 0.3.x text), node logs,
    and the output of `dora run` / `dora start --attach` / `dora stop`, with or without
    colour, behind journald or syslog prefixes, gzip-compressed or not. With --recording,
    the samples of the same run name who held the GIL when dora ended each node.

    \b
    Examples:
      dora-doctor postmortem out/
      dora-doctor postmortem daemon.log coordinator.log node-logs/ --recording run.ddrec
      dora run robot.yml 2>&1 | tee run.log; dora-doctor postmortem run.log
      journalctl -u dora-daemon | dora-doctor postmortem -
    """
    from dora_doctor.analysis import postmortem as library
    from dora_doctor.recording.jsonl import read_recording
    from dora_doctor.report import postmortem as render

    refuse_existing(html_file)
    recorded = read_recording(recording) if recording else None
    result = library.postmortem(inputs, recorded)
    err = consoles.err()
    for problem in result.scan.stats.problems:
        err.print(f"dora-doctor: warning: {problem}", highlight=False)
    if result.scan.stats.files == 0:
        raise DoctorError("nothing to read: " + "; ".join(result.scan.stats.problems))
    history.record_postmortem(result, db, no_history, recording)
    if html_file is not None:
        from dora_doctor.recording.jsonl import Recording
        from dora_doctor.report import html

        samples = recorded or Recording(path=None, header={}, dataflows=[])
        write_output(html_file, html.render(result.report, samples))
    if as_json:
        sys.stdout.write(render.render_json(result))
    else:
        render.render_terminal(result, consoles.out())
