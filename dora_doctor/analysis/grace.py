"""Choosing a grace period from measured stop→exit times, honest about censoring.

A rehearsal that hit its ceiling (or a node dora ended at the grace deadline) did not show
how long the node needed, only that it needed at least that long: such a measurement is
*censored*. Censored values are reported as "≥ value" and never averaged in. The
suggestion is the slowest node's p99 (its maximum below 20 runs) times a margin, rounded up
to whole seconds, and it is withheld where more grace cannot help (a node that never
reacts, or one starved by a GIL holder) or where the ceiling hid the answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from dora_doctor.analysis.findings import Cause, Suggestion
from dora_doctor.dora.versions import stop_command
from dora_doctor.units import format_duration

BLOCKING_CAUSES = (Cause.GIL_CONTENTION, Cause.STUCK)
# A stop that came before the node connected (or while it waited for a peer that had not)
# says nothing about how long its stop takes: no grace value comes from it, and it is no
# reason to "measure with tune-grace" either.
NOT_STARTED_CAUSES = (Cause.STARTING, Cause.WAITING_FOR_PEER)
P99_MIN_RUNS = 20


@dataclass
class StopTime:
    """One node's stop→exit time in one run; ``censored`` means "at least this long"."""

    seconds: float
    censored: bool = False
    cause: Optional[str] = None


@dataclass
class NodeStats:
    node: str
    runs: int
    measured: List[float] = field(default_factory=list)
    censored: List[float] = field(default_factory=list)
    causes: List[str] = field(default_factory=list)
    p50: Optional[float] = None
    p95: Optional[float] = None
    max: Optional[float] = None

    @property
    def blocking_cause(self) -> Optional[str]:
        """A cause more grace cannot fix, if it was seen in any run."""
        return next((c for c in BLOCKING_CAUSES if c in self.causes), None)

    @property
    def not_started(self) -> bool:
        """Every run of it ended before it had connected to dora."""
        return (
            self.runs > 0
            and len(self.causes) == self.runs
            and all(c in NOT_STARTED_CAUSES for c in self.causes)
        )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: always one of the measured values, never interpolated."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def node_stats(node: str, times: Sequence[StopTime]) -> NodeStats:
    stats = NodeStats(node=node, runs=len(times))
    stats.measured = [t.seconds for t in times if not t.censored]
    stats.censored = [t.seconds for t in times if t.censored]
    stats.causes = [t.cause for t in times if t.cause]
    if stats.measured:
        stats.p50 = percentile(stats.measured, 50)
        stats.p95 = percentile(stats.measured, 95)
        stats.max = max(stats.measured)
    return stats


def round_up_seconds(seconds: float) -> float:
    return float(max(1, math.ceil(seconds - 1e-9)))


def suggest(
    stats: Sequence[NodeStats],
    dataflow: str,
    margin: float = 1.5,
    current_grace_s: Optional[float] = None,
    dora_version: Optional[str] = None,
) -> Suggestion:
    """The grace to use, or why there is none.

    Nodes that more grace cannot fix are named, and the value is still computed from the
    others, so that fixing the code leaves the user with a number that works.
    """
    unstarted = [s for s in stats if s.not_started]
    stats = [s for s in stats if not s.not_started]
    blockers = [s for s in stats if s.blocking_cause]
    rest = [s for s in stats if not s.blocking_cause]
    blocked = ""
    if unstarted:
        names = ", ".join(f"{s.node} ({s.causes[-1]})" for s in unstarted)
        says = "its stop says" if len(unstarted) == 1 else "their stops say"
        blocked = (
            f"{names} had not started when stopped, so {says} nothing about the grace: "
            "stop after start-up"
        )
    if blockers:
        names = ", ".join(f"{s.node} ({s.blocking_cause})" for s in blockers)
        blocked = "; ".join(
            filter(
                None,
                [
                    blocked,
                    f"no grace period fixes {names}: more grace only hides it; change the code "
                    "(see the advice per node)",
                ],
            )
        )
    hidden = [s for s in rest if s.censored]
    if hidden:
        names = ", ".join(f"{s.node} (≥ {max(s.censored):.2f} s)" for s in hidden)
        reason = (
            f"{names} did not finish before it was ended, so how long it needs is unknown: "
            "measure with `dora-doctor tune-grace` and a larger --ceiling"
        )
        return Suggestion(None, "", False, "; ".join(filter(None, [blocked, reason])))
    measured = [s for s in rest if s.measured]
    if not measured:
        return Suggestion(None, "", False, blocked or "no node's stop→exit time was measured")
    slowest = max(measured, key=_basis)
    basis = _basis(slowest)
    grace = round_up_seconds(basis * margin)
    how = "p99" if len(slowest.measured) >= P99_MIN_RUNS else "max"
    runs = len(slowest.measured)
    reason = (
        f"{format_duration(grace)} = {how} of the slowest node ({slowest.node}, "
        f"{basis:.2f} s over {runs} run{'s' if runs != 1 else ''}) × {margin:g}, rounded up"
    )
    if blockers:
        reason = f"{blocked}; once fixed, {reason} for the other nodes"
    else:
        if current_grace_s is not None and current_grace_s >= grace:
            reason += f"; the current {current_grace_s:g} s already suffices"
        if unstarted:
            reason = f"{blocked}; {reason} for the other nodes"
    return Suggestion(
        grace_s=grace,
        command=stop_command(dora_version, dataflow, format_duration(grace)),
        would_help=not blockers,
        reason=reason,
    )


def finish_drain(ended: Sequence[str]) -> Suggestion:
    """A dataflow that finished on its own, whose stragglers dora's finish drain ended: the
    time those nodes had is their finish grace (1.1: ``finish_grace_secs`` per node in the
    YAML, else the daemon's ``DORA_FINISH_DRAIN_GRACE_SECS``, 120 s by default, counted from
    when all their inputs closed), which no ``dora stop --grace-duration`` sets and no
    rehearsed ``dora stop`` measures. So no command, and no "measure with tune-grace"."""
    if not ended:
        return Suggestion(
            None, "", False, "the dataflow finished on its own and no node outlived it"
        )
    names = ", ".join(ended)
    return Suggestion(
        None,
        "",
        False,
        f"{names} still ran when dora's finish drain ended it, its finish grace after the "
        "dataflow had finished and all its inputs had closed (`finish_grace_secs` on the node "
        "in the dataflow YAML, else DORA_FINISH_DRAIN_GRACE_SECS for the daemon). A node "
        "should leave its event loop once its inputs close; `dora stop --grace-duration` "
        "does not apply to a dataflow that finishes on its own",
    )


def _basis(stats: NodeStats) -> float:
    if len(stats.measured) >= P99_MIN_RUNS:
        return percentile(stats.measured, 99)
    return max(stats.measured)


def stats_by_node(times: Dict[str, List[StopTime]]) -> List[NodeStats]:
    return [node_stats(node, values) for node, values in times.items()]
