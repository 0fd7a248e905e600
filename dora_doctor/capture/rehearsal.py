"""Rehearse a dataflow's shutdown: start it, let it run, stop it while sampling; repeat.

``tune-grace`` and ``check`` are both rehearsals: tune-grace stops with a generous ceiling to
*measure* how long each node needs, check stops with the grace a user intends to use and
says whether every node makes it. Each run is an ``inspect --stop`` of a dataflow this
module started itself, recorded to its own file, and analysed from that file.

Everything started here is stopped here, also on Ctrl-C or an error. Dataflows are named
``dora-doctor-rehearsal-<pid>-<run>`` so that leftovers of a rehearsal that was killed
outright can be recognised, and only those, by the next one."""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, List, Optional

from dora_doctor.analysis import diagnose, grace
from dora_doctor.analysis.findings import Outcome
from dora_doctor.analysis.rehearsal import Rehearsal, RehearsalOptions, RunResult
from dora_doctor.capture.logtail import find_log_files
from dora_doctor.capture.session import InspectOptions, StopPlan, inspect_dataflow
from dora_doctor.dora import descriptor, discover
from dora_doctor.dora.client import DoraCli, find_dora
from dora_doctor.dora.private import LocalDora
from dora_doctor.errors import FAILURE, DoctorError
from dora_doctor.model import Dataflow
from dora_doctor.units import format_duration

NAME_PREFIX = "dora-doctor-rehearsal-"


# Sampling before the stop gives the baseline the diagnosis compares with; the warm-up
# counts from `dora start`, so slow node start-up eats into it, but never below this.
MIN_BASELINE_S = 0.5


CLEANUP_GRACE_S = 1.0


Progress = Callable[[Rehearsal, str], None]


def check_dataflow_file(dataflow_file: Path, cli: Optional[DoraCli]) -> List[str]:
    """The file's node ids, or the one-line error (exit 2) for a file dora would refuse,
    before anything is started."""
    node_ids = descriptor.node_ids(dataflow_file)
    rejected = (cli or DoraCli(find_dora())).validate(dataflow_file)
    if rejected:
        raise DoctorError(f"{dataflow_file}: dora rejects it: {rejected}: fix the file")
    return node_ids


def rehearse(
    dataflow_file: Path,
    cli: Optional[DoraCli],
    options: RehearsalOptions,
    on_progress: Optional[Progress] = None,
) -> Rehearsal:
    """Run the rehearsals; ``cli`` is the user's dora: its coordinator, or with ``local``
    the executable that runs a private one."""
    node_ids = check_dataflow_file(dataflow_file, cli)
    began = time.monotonic()
    with ExitStack() as stack:
        if options.local or cli is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="dora-doctor-local-"))
            )
            local = stack.enter_context(LocalDora.start(workdir, cli.executable if cli else None))
            cli = local.client
        result = Rehearsal(dataflow_file, cli.version(), options)
        result.cleaned_up = clean_leftovers(cli)
        for index in range(1, options.runs + 1):
            if on_progress:
                on_progress(result, f"run {index}/{options.runs}: starting")
            result.runs.append(
                _one_run(dataflow_file, node_ids, cli, options, index, on_progress, result)
            )
            if on_progress:
                on_progress(result, f"run {index}/{options.runs}: done")
            hopeless = _hopeless_nodes(result.runs[-1])
            if hopeless and index < options.runs and not options.all_runs:
                result.ended_early = (
                    f"stopped after run {index} of {options.runs}: {', '.join(hopeless)} "
                    "outlasted the whole grace without reacting, and more runs cannot change "
                    "that (--all-runs to do them anyway)"
                )
                break
    result.wall_s = time.monotonic() - began
    return result


def _one_run(
    dataflow_file: Path,
    node_ids: List[str],
    cli: DoraCli,
    options: RehearsalOptions,
    index: int,
    on_progress: Optional[Progress],
    result: Rehearsal,
) -> RunResult:
    name = f"{NAME_PREFIX}{os.getpid()}-{index}"
    started = time.time()
    began = time.monotonic()
    uuid = cli.start(dataflow_file, name)
    try:
        dataflow = wait_for_nodes(cli, uuid, len(node_ids), options.start_timeout_s)
        baseline = max(MIN_BASELINE_S, options.warmup_s - (time.monotonic() - began))
        if on_progress:
            on_progress(
                result, f"run {index}/{options.runs}: sampling {baseline:.1f} s, then stopping"
            )
        record = options.record_dir / f"{name}.ddrec" if options.record_dir else None
        recording = inspect_dataflow(
            dataflow,
            result.dora_version,
            InspectOptions(
                record=record,
                sampler=options.sampler,
                log_files=find_log_files(dataflow.nodes, cli.control_port()),
                stop=StopPlan(cli, after_s=baseline, grace_s=options.stop_grace_s),
                # a node that outlives 1.5 × the grace has been SIGKILLed: never wait forever
                duration_s=options.warmup_s + options.stop_grace_s * 1.5 + 15.0,
                # a rehearsal measures stop→exit: no native dump (a pause) near its ceiling
                last_dump=False,
            ),
        )
        if str(recording.header.get("ended_because", "")).startswith("interrupted"):
            raise KeyboardInterrupt  # Ctrl-C ends the rehearsal, not just this run
    finally:
        _stop_quietly(cli, uuid)
    report = diagnose.report_from_recording(recording, options.margin)
    return RunResult(index, name, uuid, report, started, time.time(), record, recording)


def _hopeless_nodes(run: RunResult) -> List[str]:
    """Nodes dora had to end that were starved of the GIL or never reacted at all."""
    return [
        f"{n.id} ({n.cause})"
        for n in run.nodes
        if n.outcome in (Outcome.TERMINATED, Outcome.KILLED) and n.cause in grace.BLOCKING_CAUSES
    ]


def wait_for_nodes(cli: DoraCli, uuid: str, count: int, timeout_s: float) -> Dataflow:
    """Poll discovery until every node of the new dataflow has a process."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = discover.discover(cli, ask_version=False)
        dataflow = next((d for d in found.dataflows if d.uuid == uuid), None)
        if dataflow is not None and len([n for n in dataflow.nodes if n.pid]) >= count:
            return dataflow
        if time.monotonic() > deadline:
            have = len(dataflow.nodes) if dataflow else 0
            raise DoctorError(
                f"the rehearsal dataflow had {have} of {count} node processes after "
                f"{timeout_s:g} s: does it start with `dora start`?",
                FAILURE,
            )
        time.sleep(0.2)


def clean_leftovers(cli: DoraCli) -> List[str]:
    """Stop rehearsal dataflows a killed dora-doctor left running: ours by name, no others."""
    stopped = []
    for row in cli.list_dataflows():
        name = str(row.get("name") or "")
        status = str(row.get("status") or "running").lower()
        if name.startswith(NAME_PREFIX) and status in ("running", "starting", "stopping"):
            cli.stop(str(row.get("uuid") or name), format_duration(CLEANUP_GRACE_S))
            stopped.append(name)
    return stopped


def _stop_quietly(cli: DoraCli, uuid: str) -> None:
    """Stop a dataflow this module started; it is fine if it is already gone."""
    for row in cli.list_dataflows():
        if row.get("uuid") == uuid and str(row.get("status", "")).lower() in (
            "running",
            "starting",
        ):
            cli.stop(uuid, format_duration(CLEANUP_GRACE_S))
            return
