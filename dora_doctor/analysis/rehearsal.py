"""The results of rehearsed stops, and what they say: stop times per node, the grace
suggestion, and the failures `check` reports. Pure data over recordings and diagnoses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from dora_doctor.analysis import grace
from dora_doctor.analysis.findings import Cause, Diagnosis, NodeFinding, Outcome, Suggestion
from dora_doctor.model import SamplerOptions
from dora_doctor.recording.model import Recording


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
    report: Diagnosis
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
                if node.stop_duration_s is None or node.outcome in (Outcome.UNKNOWN, None):
                    continue  # an end nobody saw how: no grace value is derived from it
                censored = node.outcome in (Outcome.TERMINATED, Outcome.KILLED, Outcome.RUNNING)
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


def check_failures(rehearsal: Rehearsal) -> List[str]:
    """One line per node that did not stop cleanly within the stated grace, in any run."""
    lines = []
    for run in rehearsal.runs:
        for node in run.nodes:
            ok = node.outcome == Outcome.CLEAN and node.cause in (
                Cause.NONE,
                Cause.SLOW_SHUTDOWN,
                None,
            )
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
