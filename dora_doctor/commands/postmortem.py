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
    from dora_doctor.logs.logfiles import missing
    from dora_doctor.recording.reader import read_recording
    from dora_doctor.report import registry
    from dora_doctor.textsafe import for_terminal

    gone = missing(inputs)
    if gone:  # a typo, not a damaged log: one line, before anything is read
        more = f" (and {len(gone) - 1} more)" if len(gone) > 1 else ""
        raise DoctorError(f"{gone[0]}: no such file or directory{more}")  # cli.main escapes it
    refuse_existing(html_file)
    recorded = read_recording(recording) if recording else None
    result = library.postmortem(inputs, recorded)
    stats = result.scan.stats
    if stats.files == 0:
        listed = "; ".join(stats.problems[:3]) or "no input"
        more = f" (and {len(stats.problems) - 3} more)" if len(stats.problems) > 3 else ""
        raise DoctorError(f"nothing to read: {listed}{more}")
    err = consoles.err()
    for problem in stats.problems:
        err.print(f"dora-doctor: warning: {for_terminal(problem)}", highlight=False, markup=False)
    if stats.bytes == 0 and recorded is None:
        err.print(
            f"dora-doctor: the input is empty ({stats.files} file(s), 0 bytes): nothing to report",
            highlight=False,
        )
        if not as_json:
            return
    history.record_postmortem(result, db, no_history, recording)
    shown = consoles.render_options()
    if html_file is not None:
        from dora_doctor.analysis.result import analyse
        from dora_doctor.recording.model import Recording

        samples = recorded or Recording(path=None, header={}, dataflows=[])
        analysis = analyse(samples, diagnosis=result.report)
        write_output(html_file, registry.HTML.render(analysis, shown))
    renderer = registry.POSTMORTEM["json" if as_json else "terminal"]
    sys.stdout.write(renderer.render(result, shown))
