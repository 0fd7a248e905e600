"""What tune-grace and check share: rehearsal options, and rehearsals run with a progress bar
and the live table of stop times."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from dora_doctor.report import consoles
from dora_doctor.textsafe import for_terminal
from dora_doctor.units import format_duration

if TYPE_CHECKING:
    from dora_doctor.analysis.rehearsal import Rehearsal, RehearsalOptions


def rehearsal_options(
    runs: int, warmup: str, stop_grace: str, grace_option: str, local: bool
) -> "RehearsalOptions":
    from dora_doctor.analysis.rehearsal import RehearsalOptions
    from dora_doctor.units import parse_duration

    return RehearsalOptions(
        runs=runs,
        warmup_s=parse_duration(warmup, "--warmup"),
        stop_grace_s=parse_duration(stop_grace, grace_option),
        local=local,
    )


def rehearse_with_progress(
    dataflow_file: Path,
    options: "RehearsalOptions",
    coordinator_addr: Optional[str],
    coordinator_port: Optional[int],
    dora: Optional[str],
) -> "Rehearsal":
    """Run the rehearsals with a progress bar and the table of stop times so far."""
    from rich.console import Group
    from rich.live import Live
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from dora_doctor.capture import rehearsal
    from dora_doctor.dora import client, descriptor
    from dora_doctor.report import rehearsal as render

    descriptor.node_ids(dataflow_file)  # the file's own faults first, even without dora
    cli = client.DoraCli(client.find_dora(dora), coordinator_addr, coordinator_port)
    rehearsal.check_dataflow_file(dataflow_file, cli)
    err = consoles.err()
    err.print(
        f"Rehearsing {for_terminal(str(dataflow_file))} {options.runs} time(s) "
        + ("on a private dora" if options.local else f"on the coordinator at {cli.where()}")
        + f": {options.warmup_s:g} s running, then "
        + f"`dora stop --grace-duration {format_duration(options.stop_grace_s)}`.",
        highlight=False,
        markup=False,
    )
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    task = progress.add_task("starting", total=options.runs)
    with Live(console=err, auto_refresh=False, transient=True) as screen:

        def update(state: "Rehearsal", message: str) -> None:
            progress.update(
                task, completed=len(state.runs), description=escape(for_terminal(message))
            )
            if err.is_terminal:
                screen.update(Group(progress, render.runs_table(state)), refresh=True)
            else:
                err.print(for_terminal(message), highlight=False, markup=False)

        result = rehearsal.rehearse(dataflow_file, cli, options, update)
    return result
