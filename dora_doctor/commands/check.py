"""`dora-doctor check`: for CI, does every node stop cleanly within the stated grace?"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dora_doctor.commands import common, history
from dora_doctor.commands.rehearsing import rehearsal_options, rehearse_with_progress
from dora_doctor.report import consoles


def command(
    dataflow_file: Path = typer.Argument(..., help="The dataflow YAML to rehearse."),
    grace: str = typer.Option(..., "--grace", help="The grace period you intend to use (5s)."),
    runs: int = typer.Option(1, "--runs", "-n", min=1, max=100, help="How many rehearsals."),
    warmup: str = typer.Option(
        "3s", "--warmup", help="How long each run runs before the stop, from `dora start`."
    ),
    local: bool = typer.Option(
        False, "--local", help="Rehearse on a private coordinator and daemon, not the running one."
    ),
    as_json: bool = common.CHECK_JSON,
    db: Optional[Path] = history.DB,
    no_history: bool = history.NO_HISTORY,
    coordinator_addr: Optional[str] = common.COORDINATOR_ADDR,
    coordinator_port: Optional[int] = common.COORDINATOR_PORT,
    dora: Optional[str] = common.DORA,
) -> None:
    """For CI: does every node stop cleanly within GRACE? Exit 0 if so, 1 if not.

    Stops the dataflow with the stated grace (once, or --runs times) and fails with one line
    per node that dora had to terminate or kill, or that exited with an error.

    \b
    Examples:
      dora-doctor check robot.yml --grace 5s --local
      dora-doctor check robot.yml --grace 2s --runs 3 --json
    """
    from dora_doctor.analysis.rehearsal import check_failures
    from dora_doctor.report import registry
    from dora_doctor.textsafe import for_terminal

    options = rehearsal_options(runs, warmup, grace, "--grace", local)
    rehearsal = rehearse_with_progress(
        dataflow_file, options, coordinator_addr, coordinator_port, dora
    )
    history.record_rehearsal(rehearsal, "check", db, no_history)
    failures = check_failures(rehearsal)
    shown = consoles.render_options()
    if as_json:
        check = registry.Check(rehearsal, grace, failures)
        sys.stdout.write(registry.CHECK_JSON.render(check, shown))
    else:
        sys.stdout.write(registry.CHECK_RUNS.render(rehearsal, shown))
    for line in failures:
        print(f"dora-doctor: check failed: {for_terminal(line)}", file=sys.stderr)
    if failures:
        raise typer.Exit(1)
    if not as_json:
        print(f"check passed: every node stopped cleanly within {grace}")
