"""Rehearse a dataflow's shutdown: start it, let it run, stop it while sampling; repeat.

``tune-grace`` and ``check`` are both rehearsals: tune-grace stops with a generous ceiling to
*measure* how long each node needs, check stops with the grace a user intends to use and
says whether every node makes it. Each run is an ``inspect --stop`` of a dataflow this
module started itself, recorded to its own file, and analysed from that file.

Everything started here is stopped here, also on Ctrl-C or an error. Dataflows are named
``dora-doctor-rehearsal-<pid>-<run>`` so that leftovers of a rehearsal that was killed
outright can be recognised, and only those, by the next one.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from dora_doctor import descriptor, diagnose, discover, grace
from dora_doctor.doracli import DoraCli, find_dora
from dora_doctor.errors import FAILURE, DoctorError
from dora_doctor.findings import NodeFinding, Report, Suggestion
from dora_doctor.localdora import LocalDora
from dora_doctor.model import Dataflow
from dora_doctor.recording import Recording
from dora_doctor.sampler import SamplerOptions
from dora_doctor.stopwatch import find_log_files
from dora_doctor.units import format_duration
from dora_doctor.watch import InspectOptions, StopPlan, inspect_dataflow

NAME_PREFIX = "dora-doctor-rehearsal-"
# Sampling before the stop gives the baseline the diagnosis compares with; the warm-up
# counts from `dora start`, so slow node start-up eats into it, but never below this.
MIN_BASELINE_S = 0.5
CLEANUP_GRACE_S = 1.0


@dataclass
class RehearsalOptions:
    runs: int = 5
    warmup_s: float = 3.0
    stop_grace_s: float = 60.0  # the ceiling for tune-grace, the intended grace for check
    margin: float = 1.5
    local: bool = False
    record_dir: Optional[Path] = None
    sampler: SamplerOptions = field(default_factory=SamplerOptions)
    start_timeout_s: float = 60.0
    all_runs: bool = False


@dataclass
class RunResult:
    index: int
    name: str
    uuid: str
    report: Report
    started: float
    ended: float
    recording: Optional[Path] = None
    recorded: Optional[Recording] = None  # the samples themselves, for the HTML page

    @property
    def nodes(self) -> List[NodeFinding]:
        return self.report.dataflows[0].nodes if self.report.dataflows else []


@dataclass
class Rehearsal:
    dataflow_file: Path
    dora_version: Optional[str]
    options: RehearsalOptions
    runs: List[RunResult] = field(default_factory=list)
    cleaned_up: List[str] = field(default_factory=list)
    wall_s: float = 0.0
    ended_early: Optional[str] = None

    def stop_times(self) -> Dict[str, List[grace.StopTime]]:
        """Per node, each run's stop→exit time, censored where dora ended the node."""
        times: Dict[str, List[grace.StopTime]] = {}
        for run in self.runs:
            for node in run.nodes:
                if node.stop_duration_s is None:
                    continue
                censored = node.outcome in ("terminated", "killed", "running")
                times.setdefault(node.id, []).append(
                    grace.StopTime(node.stop_duration_s, censored, node.cause)
                )
        return times

    def stats(self) -> List[grace.NodeStats]:
        return grace.stats_by_node(self.stop_times())

    def suggestion(self) -> Suggestion:
        return grace.suggest(
            self.stats(), self.dataflow_file.stem, self.options.margin, None, self.dora_version
        )

    def overhead_ratio(self) -> Optional[float]:
        """Wall time over the time the rehearsal had to take (warm-ups and stops)."""
        needed = sum(
            self.options.warmup_s + max((n.stop_duration_s or 0.0) for n in run.nodes)
            for run in self.runs
            if run.nodes
        )
        return round(self.wall_s / needed, 3) if needed > 0 else None


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
        if n.outcome in ("terminated", "killed") and n.cause in grace.BLOCKING_CAUSES
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


def check_failures(rehearsal: Rehearsal) -> List[str]:
    """One line per node that did not stop cleanly within the stated grace, in any run."""
    lines = []
    for run in rehearsal.runs:
        for node in run.nodes:
            ok = node.outcome == "clean" and node.cause in ("none", "slow-shutdown", None)
            if ok:
                continue
            took = (
                f" after {node.stop_duration_s:.2f} s" if node.stop_duration_s is not None else ""
            )
            why = node.cause or "cause unknown"
            detail = next((e for e in node.evidence if e.startswith(("Thread", "MainThread"))), "")
            lines.append(
                f"run {run.index}: node {node.id} {node.outcome or 'unknown'}{took} ({why})"
                + (f": {detail}" if detail else "")
            )
    return lines
