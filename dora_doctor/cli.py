"""Command line: parse arguments, call the library, print. Nothing else lives here."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, List, Optional

import typer

from dora_doctor.errors import USAGE, DoctorError
from dora_doctor.report import consoles
from dora_doctor.units import format_duration

if TYPE_CHECKING:
    from dora_doctor.rehearse import Rehearsal, RehearsalOptions

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


@app.command()
def inspect(
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
    as_json: bool = JSON,
    coordinator_addr: Optional[str] = COORDINATOR_ADDR,
    coordinator_port: Optional[int] = COORDINATOR_PORT,
    dora: Optional[str] = DORA,
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

    from dora_doctor import diagnose, discover, doracli, machines, stopwatch, watch
    from dora_doctor.report import json as json_report
    from dora_doctor.report import live, terminal
    from dora_doctor.sampler import SamplerOptions, preflight
    from dora_doctor.units import parse_duration

    duration_s = parse_duration(duration, "--duration") if duration else None
    if grace_duration is not None and not stop:
        raise DoctorError("--grace-duration goes with --stop (dora-doctor only stops when asked)")
    grace_s = parse_duration(grace_duration, "--grace-duration") if grace_duration else None
    stop_after_s = parse_duration(stop_after, "--stop-after")
    _refuse_existing(record, html_file)
    err = consoles.err()
    cli = doracli.DoraCli(doracli.find_dora(dora), coordinator_addr, coordinator_port)
    found = discover.discover(cli)
    chosen = discover.select_dataflow(found.dataflows, dataflow)
    if machine is not None:
        machines.restrict_to_machine(chosen, machine)
    python_nodes = [n for n in chosen.nodes if n.sample_pid]
    remote = [n for n in chosen.nodes if n.remote]
    err.print(
        f"dora {found.dora_version or '(unknown version)'} at {cli.where()}: inspecting "
        f"{chosen.label} ({len(chosen.nodes)} nodes, {len(python_nodes)} Python"
        + (f", {len(remote)} elsewhere, not sampled here" if remote else "")
        + (f"; machine {machine}" if machine else "")
        + ")",
        highlight=False,
    )
    preflight(python_nodes)
    plan = None
    if stop:
        plan = watch.StopPlan(cli, after_s=stop_after_s, grace_s=grace_s)
        err.print(
            f"As asked with --stop, dora-doctor will run `dora stop {chosen.label}"
            + (f" --grace-duration {grace_duration}" if grace_duration else "")
            + f"` in {stop_after_s:g} s.",
            highlight=False,
        )
    files = stopwatch.find_log_files(chosen.nodes, cli.control_port())
    if not files.daemons:
        err.print(
            "dora's daemon log is not readable from here: how nodes ended will be partly unknown.",
            highlight=False,
        )
    options = watch.InspectOptions(
        duration_s=duration_s,
        record=record,
        sampler=SamplerOptions(rate=rate, nonblocking=nonblocking, segment_s=segment),
        log_files=files,
        stop=plan,
        dora_processes=stopwatch.find_dora_processes(chosen.nodes, cli.control_port()),
        locals=read_locals,
    )

    def notice(text: str) -> None:
        err.print(f"dora-doctor: {text}", highlight=False)

    if err.is_terminal:
        with Live(console=err, auto_refresh=False, transient=False) as screen:
            recording = watch.inspect_dataflow(
                chosen,
                found.dora_version,
                options,
                on_update=lambda s: screen.update(live.table(s), refresh=True),
                on_notice=notice,
            )
    else:
        recording = watch.inspect_dataflow(chosen, found.dora_version, options, on_notice=notice)
    err.print(f"Stopped watching: {recording.header.get('ended_because')}", highlight=False)
    report = diagnose.report_from_recording(recording)
    if html_file is not None:
        from dora_doctor.report import html

        _write(html_file, html.render(report, recording))
    if as_json:
        sys.stdout.write(json_report.render(report))
    else:
        terminal.render(report, consoles.out(), recording)


@app.command()
def report(
    recording: Path = typer.Argument(..., help="A recording made with `inspect --record`."),
    format: Optional[str] = typer.Option(
        None,
        "--format",
        "-f",
        help="terminal, json, markdown, html or perfetto (default: from --output's suffix: "
        ".md markdown, .html html, .json perfetto; else terminal).",
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write to this file (never overwritten) instead of stdout."
    ),
    show_paths: bool = typer.Option(
        False, "--show-paths", help="Markdown: keep absolute paths (they name users and hosts)."
    ),
    show_locals: bool = typer.Option(
        False,
        "--show-locals",
        help="Show the values of local variables recorded with `inspect --locals` (they may "
        "hold secrets; by default every format shows names and '<redacted: N chars>').",
    ),
    as_json: bool = JSON,
) -> None:
    """Analyse a recording again, without any process, and render it.

    \b
    Examples:
      dora-doctor report robot.ddrec
      dora-doctor report robot.ddrec --format markdown        # paste into a GitHub issue
      dora-doctor report robot.ddrec -o shutdown.html         # open in any browser, offline
      dora-doctor report robot.ddrec -o trace.json            # open in ui.perfetto.dev
      dora-doctor report robot.ddrec --json
    """
    from dora_doctor import diagnose
    from dora_doctor.recording import read_recording
    from dora_doctor.report import html, markdown, perfetto, terminal
    from dora_doctor.report import json as json_report

    chosen = "json" if as_json else (format or _format_from_suffix(output))
    if chosen not in ("terminal", "json", "markdown", "html", "perfetto"):
        raise DoctorError(f"--format {chosen}: choose terminal, json, markdown, html or perfetto")
    _refuse_existing(output)
    loaded = read_recording(recording)
    result = diagnose.report_from_recording(loaded, show_locals=show_locals)
    result.recording = str(recording)
    if chosen == "terminal":
        if output is not None:
            raise DoctorError("--format terminal prints to the screen: leave out --output")
        terminal.render(result, consoles.out(), loaded)
        return
    text = {
        "json": lambda: json_report.render(result),
        "markdown": lambda: markdown.render(result, loaded, show_paths),
        "html": lambda: html.render(result, loaded),
        "perfetto": lambda: perfetto.render(loaded, show_locals),
    }[chosen]()
    if output is None:
        sys.stdout.write(text)
    else:
        _write(output, text)


def _refuse_existing(*paths: Optional[Path]) -> None:
    """Nothing the user owns is overwritten: checked before any work starts."""
    for path in paths:
        if path is not None and path.exists():
            raise DoctorError(f"{path} already exists: dora-doctor does not overwrite files")


def _write(path: Path, text: str) -> None:
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError as err:
        raise DoctorError(f"{path} already exists: dora-doctor does not overwrite files") from err
    except OSError as err:
        raise DoctorError(f"cannot write {path}: {err.strerror}") from err
    print(f"wrote {path}", file=sys.stderr)


def _format_from_suffix(output: Optional[Path]) -> str:
    if output is None:
        return "terminal"
    return {".md": "markdown", ".html": "html", ".json": "perfetto"}.get(output.suffix, "terminal")


@app.command()
def postmortem(
    inputs: List[str] = typer.Argument(
        ..., help="Log files, out/ directories, .gz files, or - for standard input."
    ),
    recording: Optional[Path] = typer.Option(
        None, "--recording", "-r", help="A recording of the same run, for the GIL holders."
    ),
    html_file: Optional[Path] = typer.Option(
        None, "--html", help="Also write the report as an HTML page (lanes need --recording)."
    ),
    as_json: bool = JSON,
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
    from dora_doctor import postmortem as library
    from dora_doctor.recording import read_recording
    from dora_doctor.report import postmortem as render

    _refuse_existing(html_file)
    recorded = read_recording(recording) if recording else None
    result = library.postmortem(inputs, recorded)
    err = consoles.err()
    for problem in result.scan.stats.problems:
        err.print(f"dora-doctor: warning: {problem}", highlight=False)
    if result.scan.stats.files == 0:
        raise DoctorError("nothing to read: " + "; ".join(result.scan.stats.problems))
    if html_file is not None:
        from dora_doctor.recording import Recording
        from dora_doctor.report import html

        samples = recorded or Recording(path=None, header={}, dataflows=[])
        _write(html_file, html.render(result.report, samples))
    if as_json:
        sys.stdout.write(render.render_json(result))
    else:
        render.render_terminal(result, consoles.out())


@app.command()
def merge(
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
    from dora_doctor import merge as library

    result = library.merge(recordings, output)
    where = "; ".join(
        f"{', '.join(nodes)} on {machine}" for machine, nodes in sorted(result.machines.items())
    )
    print(
        f"wrote {result.output}: {len(result.inputs)} recordings of {result.dataflow}, "
        f"{result.records} records" + (f"; sampled {where}" if where else ""),
        file=sys.stderr,
    )


@app.command("tune-grace")
def tune_grace(
    dataflow_file: Path = typer.Argument(..., help="The dataflow YAML to rehearse."),
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
    as_json: bool = JSON,
    coordinator_addr: Optional[str] = COORDINATOR_ADDR,
    coordinator_port: Optional[int] = COORDINATOR_PORT,
    dora: Optional[str] = DORA,
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
    """
    from dora_doctor.report import rehearsal as render

    if record_dir is not None and not record_dir.is_dir():
        raise DoctorError(f"--record-dir {record_dir}: no such directory")
    _refuse_existing(html_file)
    options = _rehearsal_options(runs, warmup, ceiling, "--ceiling", local)
    options.margin, options.record_dir, options.all_runs = margin, record_dir, all_runs
    options.sampler.rate = rate
    rehearsal = _rehearse(dataflow_file, options, coordinator_addr, coordinator_port, dora)
    if html_file is not None:
        from dora_doctor.report import html

        sections = [(run.report, run.recorded) for run in rehearsal.runs if run.recorded]
        _write(html_file, html.render_many(sections))
    if as_json:
        sys.stdout.write(render.render_json(rehearsal))
    else:
        render.render_terminal(rehearsal, consoles.out())


@app.command()
def check(
    dataflow_file: Path = typer.Argument(..., help="The dataflow YAML to rehearse."),
    grace: str = typer.Option(..., "--grace", help="The grace period you intend to use (5s)."),
    runs: int = typer.Option(1, "--runs", "-n", min=1, max=100, help="How many rehearsals."),
    warmup: str = typer.Option(
        "3s", "--warmup", help="How long each run runs before the stop, from `dora start`."
    ),
    local: bool = typer.Option(
        False, "--local", help="Rehearse on a private coordinator and daemon, not the running one."
    ),
    as_json: bool = JSON,
    coordinator_addr: Optional[str] = COORDINATOR_ADDR,
    coordinator_port: Optional[int] = COORDINATOR_PORT,
    dora: Optional[str] = DORA,
) -> None:
    """For CI: does every node stop cleanly within GRACE? Exit 0 if so, 1 if not.

    Stops the dataflow with the stated grace (once, or --runs times) and fails with one line
    per node that dora had to terminate or kill, or that exited with an error.

    \b
    Examples:
      dora-doctor check robot.yml --grace 5s --local
      dora-doctor check robot.yml --grace 2s --runs 3 --json
    """
    from dora_doctor.rehearse import check_failures
    from dora_doctor.report import rehearsal as render

    options = _rehearsal_options(runs, warmup, grace, "--grace", local)
    rehearsal = _rehearse(dataflow_file, options, coordinator_addr, coordinator_port, dora)
    failures = check_failures(rehearsal)
    if as_json:
        data = render.to_dict(rehearsal)
        data["check"] = {"grace": grace, "passed": not failures, "failures": failures}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        console = consoles.out()
        console.print(render.runs_table(rehearsal))
    for line in failures:
        print(f"dora-doctor: check failed: {line}", file=sys.stderr)
    if failures:
        raise typer.Exit(1)
    if not as_json:
        print(f"check passed: every node stopped cleanly within {grace}")


def _rehearsal_options(
    runs: int, warmup: str, stop_grace: str, grace_option: str, local: bool
) -> "RehearsalOptions":
    from dora_doctor.rehearse import RehearsalOptions
    from dora_doctor.units import parse_duration

    return RehearsalOptions(
        runs=runs,
        warmup_s=parse_duration(warmup, "--warmup"),
        stop_grace_s=parse_duration(stop_grace, grace_option),
        local=local,
    )


def _rehearse(
    dataflow_file: Path,
    options: "RehearsalOptions",
    coordinator_addr: Optional[str],
    coordinator_port: Optional[int],
    dora: Optional[str],
) -> "Rehearsal":
    """Run the rehearsals with a progress bar and the table of stop times so far."""
    from rich.console import Group
    from rich.live import Live
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from dora_doctor import descriptor, doracli, rehearse
    from dora_doctor.report import rehearsal as render

    descriptor.node_ids(dataflow_file)  # the file's own faults first, even without dora
    cli = doracli.DoraCli(doracli.find_dora(dora), coordinator_addr, coordinator_port)
    rehearse.check_dataflow_file(dataflow_file, cli)
    err = consoles.err()
    err.print(
        f"Rehearsing {dataflow_file} {options.runs} time(s) "
        + ("on a private dora" if options.local else f"on the coordinator at {cli.where()}")
        + f": {options.warmup_s:g} s running, then "
        + f"`dora stop --grace-duration {format_duration(options.stop_grace_s)}`.",
        highlight=False,
    )
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    task = progress.add_task("starting", total=options.runs)
    with Live(console=err, auto_refresh=False, transient=True) as screen:

        def update(state: "Rehearsal", message: str) -> None:
            progress.update(task, completed=len(state.runs), description=message)
            if err.is_terminal:
                screen.update(Group(progress, render.runs_table(state)), refresh=True)
            else:
                err.print(message, highlight=False)

        result = rehearse.rehearse(dataflow_file, cli, options, update)
    return result


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
