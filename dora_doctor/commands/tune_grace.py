"""`dora-doctor tune-grace`: rehearse stops and suggest a grace period from them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dora_doctor.commands import common, history
from dora_doctor.commands.common import refuse_existing, write_output
from dora_doctor.commands.rehearsing import rehearsal_options, rehearse_with_progress
from dora_doctor.errors import DoctorError
from dora_doctor.report import consoles


def command(
    dataflow_file: Path = typer.Argument(
        ..., help="The dataflow YAML to rehearse (with --from-history: or a dataflow name)."
    ),
    runs: int = typer.Option(5, "--runs", "-n", min=1, max=100, help="How many rehearsals."),
    warmup: str = typer.Option(
        "3s", "--warmup", help="How long each run runs before the stop, from `dora start`."
    ),
    ceiling: str = typer.Option(
        "60s", "--ceiling", help="The grace each rehearsal stops with: generous, to measure."
    ),
    margin: float = typer.Option(1.5, "--margin", min=1.0, max=10.0, help="Safety factor."),
    local: bool = typer.Option(
        False, "--local", help="Rehearse on a private coordinator and daemon, not the running one."
    ),
    record_dir: Optional[Path] = typer.Option(
        None, "--record-dir", help="Keep each run's recording in this directory."
    ),
    all_runs: bool = typer.Option(
        False,
        "--all-runs",
        help="Do every run even when a node outlasted the ceiling without reacting.",
    ),
    html_file: Optional[Path] = typer.Option(
        None, "--html", help="Also write every run's shutdown on one HTML page."
    ),
    rate: int = typer.Option(200, "--rate", min=1, max=1000, help="Samples per second per node."),
    as_json: bool = common.REHEARSAL_JSON,
    from_history: bool = typer.Option(
        False,
        "--from-history",
        help="Suggest a grace from the real stops in the history, without any rehearsal.",
    ),
    since: Optional[str] = typer.Option(
        None, "--since", help="With --from-history: only stops of this recent past (30d)."
    ),
    db: Optional[Path] = history.DB,
    no_history: bool = history.NO_HISTORY,
    coordinator_addr: Optional[str] = common.COORDINATOR_ADDR,
    coordinator_port: Optional[int] = common.COORDINATOR_PORT,
    dora: Optional[str] = common.DORA,
) -> None:
    """Rehearse start and stop several times and suggest a grace period from the measurements.

    Each run starts the dataflow (named dora-doctor-rehearsal-…), lets it run --warmup,
    stops it with --ceiling as the grace while sampling, and measures stop→exit per node.
    Runs that hit the ceiling count as "≥ ceiling", never as the value. Where a node is
    starved of the GIL or never reacts to STOP, it says that no grace value helps.

    \b
    Examples:
      dora-doctor tune-grace robot.yml
      dora-doctor tune-grace robot.yml --runs 10 --ceiling 30s --margin 1.2
      dora-doctor tune-grace robot.yml --local --json > grace.json
      dora-doctor tune-grace robot.yml --from-history --since 30d
    """
    from dora_doctor.analysis.result import analyse
    from dora_doctor.report import registry

    if from_history:
        return history.suggest_from_history(dataflow_file, db, since, margin, as_json)
    if record_dir is not None and not record_dir.is_dir():
        raise DoctorError(f"--record-dir {record_dir}: no such directory")
    refuse_existing(html_file)
    options = rehearsal_options(runs, warmup, ceiling, "--ceiling", local)
    options.margin, options.record_dir, options.all_runs = margin, record_dir, all_runs
    options.sampler.rate = rate
    rehearsal = rehearse_with_progress(
        dataflow_file, options, coordinator_addr, coordinator_port, dora
    )
    history.record_rehearsal(rehearsal, "tune-grace", db, no_history)
    shown = consoles.render_options()
    if html_file is not None:
        recorded = [analyse(r.recorded, diagnosis=r.report) for r in rehearsal.runs if r.recorded]
        write_output(html_file, registry.HTML.render_many(recorded, shown))
    renderer = registry.REHEARSAL["json" if as_json else "terminal"]
    sys.stdout.write(renderer.render(rehearsal, shown))
