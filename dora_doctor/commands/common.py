"""What every command shares: the dora options, the --json flag, and writing output files
without ever overwriting one the user owns."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dora_doctor.errors import DoctorError

COORDINATOR_ADDR = typer.Option(
    None, "--coordinator-addr", help="Coordinator address (default: dora's, 127.0.0.1)."
)
COORDINATOR_PORT = typer.Option(
    None, "--coordinator-port", help="Coordinator port (default: dora's)."
)
DORA = typer.Option(
    None, "--dora", help="The dora executable to use (default: next to this Python, then PATH)."
)
JSON = typer.Option(
    False, "--json", help="Print the report as JSON (schema dora-doctor.report/1) on stdout."
)
REHEARSAL_JSON = typer.Option(
    False,
    "--json",
    help="Print every run and the suggestion as JSON on stdout (docs/tune-grace.schema.json).",
)
CHECK_JSON = typer.Option(
    False,
    "--json",
    help="Print the runs and the verdict as JSON on stdout (docs/check.schema.json).",
)


def refuse_existing(*paths: Optional[Path]) -> None:
    """Nothing the user owns is overwritten: checked before any work starts."""
    for path in paths:
        if path is not None and path.exists():
            raise DoctorError(f"{path} already exists: dora-doctor does not overwrite files")


def write_output(path: Path, text: str) -> None:
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError as err:
        raise DoctorError(f"{path} already exists: dora-doctor does not overwrite files") from err
    except OSError as err:
        raise DoctorError(f"cannot write {path}: {err.strerror}") from err
    print(f"wrote {path}", file=sys.stderr)
