"""The command line: assemble the commands of :mod:`dora_doctor.commands`, and turn every
error into one line and an exit code. Nothing else lives here."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import List, Optional, Type, cast

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
from dora_doctor.textsafe import for_terminal

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


def _click_error(name: str) -> Type[Exception]:
    """click's exception class ``name``, from whichever click this typer runs on (typer 0.2x
    vendors it as ``typer._click``, older ones use ``click``): found through the class
    hierarchy of ``typer.BadParameter``, which both have."""
    found = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == name)
    return cast(Type[Exception], found)


def _one_line(text: str) -> str:
    """Collapse click's wrapped message into one line; what the user typed is shown, never
    obeyed as a terminal control sequence (the one escaper every terminal path uses)."""
    return for_terminal(" ".join(text.split()))


def _usage_error(err: Exception, argv: List[str]) -> int:
    """A usage error is one line and a hint, exit 2, instead of click's four-line block."""
    if type(err).__name__ == "NoArgsIsHelpError":  # ``dora-doctor`` alone: the help
        print(err.ctx.get_help())  # type: ignore[attr-defined]
        return USAGE
    message = err.format_message()  # type: ignore[attr-defined]
    print(f"dora-doctor: error: {_one_line(message)}", file=sys.stderr)
    ctx = getattr(err, "ctx", None)
    if ctx is not None:
        print(f"see {ctx.command_path} --help", file=sys.stderr)
    else:  # an option's missing value is found before the command's context exists
        commands = {command.name for command in app.registered_commands}
        named = [name for name in argv if name in commands]
        print(f"see dora-doctor {named[0] + ' ' if named else ''}--help", file=sys.stderr)
    return USAGE


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: every DoctorError and usage error becomes one line on stderr and its exit
    code.

    Typer (click) runs with ``standalone_mode=False`` so that its usage errors come here as
    exceptions instead of being printed as click's block; --help still prints and exits 0.
    """
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    usage_error, click_error = _click_error("UsageError"), _click_error("ClickException")
    try:
        code = app(args=argv, prog_name="dora-doctor", standalone_mode=False)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else USAGE)
    except DoctorError as err:
        print(f"dora-doctor: error: {for_terminal(str(err))}", file=sys.stderr)
        return err.exit_code
    except usage_error as err:
        return _usage_error(err, sys.argv[1:] if argv is None else argv)
    except click_error as err:
        message = err.format_message()  # type: ignore[attr-defined]
        print(f"dora-doctor: error: {_one_line(message)}", file=sys.stderr)
        return int(getattr(err, "exit_code", 1))
    except (KeyboardInterrupt, typer.Abort):
        print("dora-doctor: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the promise is one line, never a traceback
        if os.environ.get("DORA_DOCTOR_DEBUG"):
            raise
        print(
            f"dora-doctor: internal error: {type(err).__name__}: {for_terminal(str(err))} "
            "(set DORA_DOCTOR_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    return code if isinstance(code, int) else 0
