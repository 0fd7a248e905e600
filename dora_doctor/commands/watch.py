"""`dora-doctor watch`: a long-running recorder of every shutdown on one machine."""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from dora_doctor.commands import common, history


def command(
    rate: int = typer.Option(
        100,
        "--rate",
        min=1,
        max=1000,
        help="Samples per second per node from the first sign of a stop (dora's stop line, "
        "a node's exit) until the nodes are gone, without pausing them.",
    ),
    baseline_rate: int = typer.Option(
        1,
        "--baseline-rate",
        min=1,
        max=50,
        help="Samples per second per node before a stop: stacks only, never pausing a node "
        "(the moments before a stop are in the recording at a fraction of the CPU).",
    ),
    segment: int = typer.Option(
        1,
        "--segment",
        min=1,
        max=60,
        help="Restart each full-rate py-spy recorder every this many seconds (longer: fewer "
        "restarts, less CPU).",
    ),
    poll: str = typer.Option("1s", "--poll", help="How often to look for new dataflows."),
    machine: Optional[str] = typer.Option(
        None, "--machine", help="Sample only the nodes of this dora machine id."
    ),
    db: Optional[Path] = history.DB,
    print_systemd_unit: bool = typer.Option(
        False,
        "--print-systemd-unit",
        help="Print a systemd unit that runs this watch as a service, and exit.",
    ),
    coordinator_addr: Optional[str] = common.COORDINATOR_ADDR,
    coordinator_port: Optional[int] = common.COORDINATOR_PORT,
    dora: Optional[str] = common.DORA,
) -> None:
    """Follow every dataflow the coordinator starts and record each shutdown.

    Each dataflow is sampled from the moment it runs until its processes are gone; every
    stop leaves one recording (read it with `dora-doctor report`) and one history entry
    with the same diagnosis `inspect` gives (see `dora-doctor history`). Nothing is ever
    stopped by it. Ctrl-C or SIGTERM end it after the stops in progress.

    \b
    Examples:
      sudo dora-doctor watch
      dora-doctor watch --db /var/lib/dora-doctor/history.sqlite3 --machine A
      dora-doctor watch --print-systemd-unit > dora-doctor-watch.service
    """
    from rich.live import Live

    from dora_doctor.capture import watcher
    from dora_doctor.dora import client
    from dora_doctor.history import store
    from dora_doctor.report import consoles
    from dora_doctor.textsafe import for_terminal
    from dora_doctor.units import parse_duration

    poll_s = parse_duration(poll, "--poll")
    dora_args: List[str] = []
    if coordinator_addr:
        dora_args += ["--coordinator-addr", coordinator_addr]
    if coordinator_port is not None:
        dora_args += ["--coordinator-port", str(coordinator_port)]
    if dora:
        dora_args += ["--dora", dora]
    if print_systemd_unit:
        argv = ["watch", "--db", str((db or store.default_path()).resolve()), "--rate", str(rate)]
        argv += ["--segment", str(segment), "--baseline-rate", str(baseline_rate)]
        argv += dora_args + (["--machine", machine] if machine else [])
        sys.stdout.write(watcher.systemd_unit(argv, getpass.getuser()))
        return
    cli = client.DoraCli(client.find_dora(dora), coordinator_addr, coordinator_port)
    options = watcher.WatchOptions(
        db=db,
        rate=rate,
        segment_s=segment,
        baseline_rate=baseline_rate,
        poll_s=poll_s,
        machine=machine,
        dora_args=dora_args,
    )

    err = consoles.err()
    status = Live(console=err, auto_refresh=False, transient=True) if err.is_terminal else None

    def say(line: str) -> None:
        """Plain lines (names from the target escaped); above the status line on a TTY."""
        stamp = time.strftime("%H:%M:%S")
        if status is not None:
            status.console.print(consoles.text(f"{stamp} {line}"), highlight=False)
        else:
            print(f"{stamp} {for_terminal(line)}", file=sys.stderr, flush=True)

    follow = watcher.Watcher(cli, options, say)

    def refresh() -> None:
        if status is not None:
            status.update(consoles.text(follow.status(), style="dim"), refresh=True)

    say(
        f"watching the coordinator at {cli.where()}; history {follow.db}; "
        f"recordings in {follow.folder}"
    )
    if status is not None:
        with status:
            follow.run(on_poll=refresh)
    else:
        follow.run()
    say(f"stopped watching: {follow.stops_recorded} stop(s) recorded")
