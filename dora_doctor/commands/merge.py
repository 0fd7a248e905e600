"""`dora-doctor merge`: one recording from several machines' recordings of a dataflow."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import typer


def command(
    recordings: List[Path] = typer.Argument(
        ..., help="Recordings of one dataflow, e.g. one per machine (inspect --machine ID)."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The merged recording to write (never overwritten)."
    ),
) -> None:
    """Merge recordings of the same dataflow into one, by wall clock.

    py-spy reads only processes on its own machine: for a dataflow spread over several
    machines, run `inspect --machine ID --record ID.ddrec` on each, then merge the files
    and analyse the result with `report` like any recording.

    \b
    Examples:
      dora-doctor merge A.ddrec B.ddrec -o robot.ddrec
      dora-doctor report robot.ddrec
    """
    from dora_doctor.recording import merge as library
    from dora_doctor.textsafe import for_terminal

    result = library.merge(recordings, output)
    where = "; ".join(
        f"{', '.join(nodes)} on {machine}" for machine, nodes in sorted(result.machines.items())
    )
    line = (
        f"wrote {result.output}: {len(result.inputs)} recordings of {result.dataflow}, "
        f"{result.records} records" + (f"; sampled {where}" if where else "")
    )
    print(for_terminal(line), file=sys.stderr)
