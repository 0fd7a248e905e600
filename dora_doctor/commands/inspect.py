"""`dora-doctor inspect`: attach to a running dataflow, sample it, diagnose its shutdown."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dora_doctor.commands import common, history
from dora_doctor.commands.common import refuse_existing, write_output
from dora_doctor.dora import versions
from dora_doctor.errors import DoctorError
from dora_doctor.report import consoles


def command(
    dataflow: Optional[str] = typer.Argument(
        None, help="Dataflow name or UUID; the only running one when omitted."
    ),
    duration: Optional[str] = typer.Option(
        None,
        "--duration",
        "-d",
        help="Stop watching after this long (30, 30s, 2m); default: until the dataflow ends "
        "or Ctrl-C.",
    ),
    record: Optional[Path] = typer.Option(
        None,
        "--record",
        "-r",
        help="Keep the samples in this recording file (JSON Lines; never overwritten).",
    ),
    rate: int = typer.Option(200, "--rate", min=1, max=1000, help="Samples per second per node."),
    nonblocking: bool = typer.Option(
        True,
        "--nonblocking/--blocking",
        help="Read the nodes without pausing them (default: ~1 % of a busy node's speed); "
        "--blocking pauses each node for every sample: exact stacks, ~15 % slower nodes.",
    ),
    segment: int = typer.Option(
        1,
        "--segment",
        min=1,
        max=60,
        help="Restart each py-spy recorder every this many seconds (longer: fewer restarts, "
        "a slower live view).",
    ),
    baseline_rate: Optional[int] = typer.Option(
        None,
        "--baseline-rate",
        min=1,
        max=50,
        help="Until a stop begins, sample each node's stacks only this often per second, "
        "without pausing it, in 300 s segments; at dora's stop line or a node's exit switch "
        "to --rate (what `watch` runs: a light baseline of an idle dataflow).",
    ),
    stop: bool = typer.Option(
        False,
        "--stop",
        help="Ask dora to stop the dataflow after --stop-after and diagnose its shutdown "
        "(the only way dora-doctor ever stops anything).",
    ),
    grace_duration: Optional[str] = typer.Option(
        None, "--grace-duration", help="With --stop: the grace period to stop with (2s, 500ms)."
    ),
    stop_after: str = typer.Option(
        "3s", "--stop-after", help="With --stop: sample this long first, as the baseline."
    ),
    html_file: Optional[Path] = typer.Option(
        None, "--html", help="Also write the shutdown as a self-contained HTML page."
    ),
    read_locals: bool = typer.Option(
        False,
        "--locals",
        help="Also read the local variables of every frame (py-spy dump --locals) when the "
        "stop is seen and when the watch ends. The recording keeps their values; reports "
        "redact them unless `report --show-locals`.",
    ),
    machine: Optional[str] = typer.Option(
        None,
        "--machine",
        help="Sample only the nodes of this dora machine id (run it on each machine, then "
        "`dora-doctor merge` the recordings).",
    ),
    only_node: Optional[str] = typer.Option(
        None,
        "--node",
        help="Sample only this node of the dataflow (how `watch` follows a restarted node's "
        "new process while the others are already followed).",
    ),
    as_json: bool = common.JSON,
    db: Optional[Path] = history.DB,
    no_history: bool = history.NO_HISTORY,
    coordinator_addr: Optional[str] = common.COORDINATOR_ADDR,
    coordinator_port: Optional[int] = common.COORDINATOR_PORT,
    dora: Optional[str] = common.DORA,
) -> None:
    """Attach to a running dataflow and sample every Python node's threads.

    Shows a live table and keeps sampling until the dataflow's processes are gone, Ctrl-C,
    or --duration. Whoever stops the dataflow (you with `dora stop`, or dora-doctor with
    --stop), it then says per node whether it reacted to STOP, who held the GIL meanwhile,
    whether dora terminated or killed it, and what to change.

    \b
    Examples:
      sudo dora-doctor inspect robot
      dora-doctor inspect robot --stop --grace-duration 2s
      dora-doctor inspect --duration 20s --record robot.ddrec
      dora-doctor inspect robot --json > report.json
      dora-doctor inspect robot --machine B --record B.ddrec   # on machine B of a dataflow
    """
    from rich.live import Live

    from dora_doctor.analysis.result import analyse
    from dora_doctor.capture import endwatch, lifeline, logtail, session
    from dora_doctor.capture.sampler import preflight
    from dora_doctor.commands import live
    from dora_doctor.dora import client, discover, machines
    from dora_doctor.model import SamplerOptions
    from dora_doctor.report import registry
    from dora_doctor.textsafe import for_terminal
    from dora_doctor.units import parse_duration

    lifeline.follow_watcher_from_env()  # a follower of `watch` ends with it
    duration_s = parse_duration(duration, "--duration") if duration is not None else None
    if grace_duration is not None and not stop:
        raise DoctorError("--grace-duration goes with --stop (dora-doctor only stops when asked)")
    grace_s = (
        parse_duration(grace_duration, "--grace-duration") if grace_duration is not None else None
    )
    stop_after_s = parse_duration(stop_after, "--stop-after")
    refuse_existing(record, html_file)
    err = consoles.err()
    cli = client.DoraCli(client.find_dora(dora), coordinator_addr, coordinator_port)
    found = discover.discover(cli)
    chosen = discover.select_dataflow(found.dataflows, dataflow)
    if machine is not None:
        machines.restrict_to_machine(chosen, machine)
    if only_node is not None:
        chosen.nodes = [n for n in chosen.nodes if n.id == only_node]
        if not chosen.nodes:
            raise DoctorError(f"--node: no node of that name in {chosen.label}")
    python_nodes = [n for n in chosen.nodes if n.sample_pid]
    remote = [n for n in chosen.nodes if n.remote]
    err.print(
        f"dora {for_terminal(found.dora_version or '(unknown version)')} at {cli.where()}: "
        "inspecting "
        f"{for_terminal(chosen.label)} ({len(chosen.nodes)} nodes, {len(python_nodes)} Python"
        + (f", {len(remote)} elsewhere, not sampled here" if remote else "")
        + (f"; machine {machine}" if machine else "")
        + ")",
        highlight=False,
        markup=False,
    )
    preflight(python_nodes)
    plan = None
    if stop:
        plan = session.StopPlan(cli, after_s=stop_after_s, grace_s=grace_s)
        # the command in this version's syntax (0.3–0.5 take a name only with --name)
        stop_words = " ".join(versions.stop_args(found.dora_version, chosen.label))
        err.print(
            f"As asked with --stop, dora-doctor will run `dora {for_terminal(stop_words)}"
            + (f" --grace-duration {grace_duration}" if grace_duration else "")
            + f"` in {stop_after_s:g} s.",
            highlight=False,
            markup=False,
        )
    files = logtail.find_log_files(chosen.nodes, cli.control_port())
    if not files.daemons:
        err.print(
            "dora's daemon log is not readable from here: how nodes ended will be partly unknown.",
            highlight=False,
        )
    options = session.InspectOptions(
        duration_s=duration_s,
        record=record,
        sampler=SamplerOptions(
            rate=rate, nonblocking=nonblocking, segment_s=segment, baseline_rate=baseline_rate
        ),
        log_files=files,
        stop=plan,
        dora_processes=endwatch.find_dora_processes(chosen.nodes, cli.control_port()),
        locals=read_locals,
    )

    def notice(text: str) -> None:
        err.print(f"dora-doctor: {for_terminal(text)}", highlight=False, markup=False)

    if err.is_terminal:
        with Live(console=err, auto_refresh=False, transient=False) as screen:
            recording = session.inspect_dataflow(
                chosen,
                found.dora_version,
                options,
                on_update=lambda s: screen.update(live.table(s), refresh=True),
                on_notice=notice,
            )
    else:
        recording = session.inspect_dataflow(chosen, found.dora_version, options, on_notice=notice)
    ended = for_terminal(str(recording.header.get("ended_because")))
    err.print(f"Stopped watching: {ended}", highlight=False, markup=False)
    analysis = analyse(recording)
    shown = consoles.render_options()
    history.record_diagnosis(recording, analysis.diagnosis, "inspect", db, no_history, record)
    if html_file is not None:
        write_output(html_file, registry.HTML.render(analysis, shown))
    sys.stdout.write((registry.JSON if as_json else registry.TERMINAL).render(analysis, shown))
