"""`dora-doctor postmortem`: read dora's logs after the fact."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.text import Text

from dora_doctor.commands import common
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
    from dora_doctor.recording.jsonl import read_recording
    from dora_doctor.report import postmortem as render

    gone = missing(inputs)
    if gone:  # a typo, not a damaged log: one line, before anything is read
        more = f" (and {len(gone) - 1} more)" if len(gone) > 1 else ""
        raise DoctorError(_shown(f"{gone[0]}: no such file or directory{more}"))
    refuse_existing(html_file)
    recorded = read_recording(recording) if recording else None
    result = library.postmortem(inputs, recorded)
    stats = result.scan.stats
    if stats.files == 0:
        shown = "; ".join(stats.problems[:3]) or "no input"
        more = f" (and {len(stats.problems) - 3} more)" if len(stats.problems) > 3 else ""
        raise DoctorError(_shown(f"nothing to read: {shown}{more}"))
    err = consoles.err()
    for problem in stats.problems:
        err.print(Text(_shown(f"dora-doctor: warning: {problem}")), highlight=False)
    if stats.bytes == 0 and recorded is None:
        err.print(
            f"dora-doctor: the input is empty ({stats.files} file(s), 0 bytes): nothing to report",
            highlight=False,
        )
        if not as_json:
            return
    if html_file is not None:
        from dora_doctor.recording.jsonl import Recording
        from dora_doctor.report import html

        samples = recorded or Recording(path=None, header={}, dataflows=[])
        write_output(html_file, html.render(result.report, samples))
    if as_json:
        sys.stdout.write(render.render_json(result))
    else:
        render.render_terminal(result, consoles.out())


# C0 and C1 controls, DEL and the bidi overrides: a file name may hold any of them
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _shown(text: str) -> str:
    """A line about an input, its file name's control characters escaped (``\\x1b``):
    a name can hold ESC[2J or an OSC sequence, and these lines go straight to the terminal."""
    return _CONTROL.sub(_escaped, text)


def _escaped(found: "re.Match[str]") -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"
