"""The command line: assemble the commands of :mod:`dora_doctor.commands`, and turn every
error into one line and an exit code. Nothing else lives here."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import List, Optional

import typer

from dora_doctor.commands import (
    check,
    history,
    inspect,
    merge,
    postmortem,
    report,
    tune_grace,
    watch,
)
from dora_doctor.errors import USAGE, DoctorError

app = typer.Typer(
    name="dora-doctor",
    help=(
        "Explain why Python nodes of a dora-rs dataflow do not stop in time: which thread "
        "held the GIL, where, and what grace period or code change fixes it."
    ),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _options(
    no_color: bool = typer.Option(False, "--no-color", help="No colours (NO_COLOR works too)."),
) -> None:
    """Options for every command."""
    if no_color:
        os.environ["NO_COLOR"] = "1"  # read by every rich Console created after this


app.command("inspect")(inspect.command)
app.command("report")(report.command)
app.command("postmortem")(postmortem.command)
app.command("merge")(merge.command)
app.command("tune-grace")(tune_grace.command)
app.command("check")(check.command)
app.command("history")(history.command)
app.command("watch")(watch.command)


def _terminate_as_interrupt(signum: int, frame: Optional[FrameType]) -> None:
    """SIGTERM ends a watch like Ctrl-C does: samples kept, recording closed, report printed."""
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: every DoctorError becomes one line on stderr and its exit code.

    Typer (click) runs in standalone mode and reports usage errors itself, with exit 2.
    """
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        app(args=argv, prog_name="dora-doctor")
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else USAGE)
    except DoctorError as err:
        print(f"dora-doctor: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("dora-doctor: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the promise is one line, never a traceback
        if os.environ.get("DORA_DOCTOR_DEBUG"):
            raise
        print(
            f"dora-doctor: internal error: {type(err).__name__}: {err} "
            "(set DORA_DOCTOR_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    return 0
