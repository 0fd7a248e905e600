"""What the history says per node: how often it stopped and how, how long it took, whether
that is getting worse, and the grace real stops call for.

Censoring follows :mod:`~dora_doctor.analysis.grace`: a stop dora ended (terminated, killed)
or that was still running is a lower bound. A percentile is shown as exact only when no
censored value sits at or below it; otherwise as "≥ value", since the true value can only be
larger.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from dora_doctor.analysis import grace
from dora_doctor.analysis.findings import Suggestion
from dora_doctor.errors import DoctorError
from dora_doctor.history.store import NodeStopView

HISTORY_SCHEMA = "dora-doctor.history/1"
# Regressions: the last RECENT stops against the ones before, when both have enough
RECENT = 20
MIN_EARLIER = 5
REGRESSION_FACTOR = 1.5
TREND_POINTS = 20

_AGE = re.compile(r"^\s*(?P<value>\d+(?:\.\d*)?)\s*(?P<unit>s|m|min|h|d|w)\s*$")
_AGE_SCALE = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_age(text: str, option: str) -> float:
    """Seconds from ``7d``, ``12h``, ``2w``, ``90m``: how far back to look or to keep."""
    match = _AGE.match(text)
    if not match or float(match["value"]) <= 0:
        raise DoctorError(f"{option} {text!r} is not an age: write 7d, 12h, 2w or 30m")
    return float(match["value"]) * _AGE_SCALE[match["unit"]]


@dataclass
class Bound:
    """A duration that may be a lower bound (``at_least``): rendered "≥ 2.00 s"."""

    seconds: float
    at_least: bool = False


@dataclass
class NodeHistory:
    dataflow: str
    node: str
    stops: int = 0
    outcomes: Dict[str, int] = field(default_factory=dict)
    p50: Optional[Bound] = None
    p95: Optional[Bound] = None
    max: Optional[Bound] = None
    latest_cause: Optional[str] = None
    latest_holder: Optional[str] = None
    latest_at: Optional[float] = None
    grace_s: Optional[float] = None  # the grace in force at the latest stop
    trend: List[Optional[float]] = field(default_factory=list)  # last stops' stop→exit
    machines: List[str] = field(default_factory=list)
    regression: Optional[str] = None


@dataclass
class History:
    nodes: List[NodeHistory] = field(default_factory=list)
    stops: int = 0
    node_stops: int = 0
    since: Optional[float] = None

    @property
    def regressions(self) -> List[NodeHistory]:
        return [n for n in self.nodes if n.regression]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "schema": HISTORY_SCHEMA,
            "since": self.since,
            "stops": self.stops,
            "node_stops": self.node_stops,
            "regressions": [
                {"dataflow": n.dataflow, "node": n.node, "text": n.regression}
                for n in self.regressions
            ],
            "nodes": [asdict(n) for n in self.nodes],
        }


def matches(view: NodeStopView, dataflow: Optional[str], descriptor: Optional[str] = None) -> bool:
    """A dataflow is named by its name, its UUID or a UUID prefix, or its descriptor hash."""
    if dataflow is None:
        return True
    return (
        (descriptor is not None and view.descriptor_hash == descriptor)
        or view.dataflow_name == dataflow
        or view.dataflow_uuid.startswith(dataflow)
        or (view.descriptor_hash is not None and view.descriptor_hash.startswith(dataflow))
    )


def rank(q: int, count: int) -> int:
    """Nearest rank of the q-th percentile among ``count`` values, in integers (exact)."""
    return max(1, (q * count + 99) // 100)


def bounded_percentile(timed: Sequence[Tuple[float, bool]], q: int) -> Optional[Bound]:
    """Nearest-rank percentile of (seconds, censored) pairs, censored ones at their lower
    bound; "at least" when a censored value is at or below it (its true value may be above)."""
    if not timed:
        return None
    ordered = sorted(timed, key=lambda t: t[0])
    value = ordered[rank(q, len(ordered)) - 1][0]
    at_least = any(censored and seconds <= value for seconds, censored in ordered)
    return Bound(round(value, 3), at_least)


ENDED_BY_DORA = ("terminated", "killed")


def regression_text(
    recent: Sequence[Tuple[Optional[str], Optional[float], bool]],
    earlier_count: int,
    earlier_ended: int,
    earlier_p95: Optional[Bound],
) -> Optional[str]:
    """Says so when the last stops (``recent``: outcome, seconds, censored) are worse than
    the ones before: dora began to end the node, or the p95 stop→exit grew over
    REGRESSION_FACTOR × the earlier p95 (an earlier p95 that is only a lower bound is no
    basis)."""
    if earlier_count < MIN_EARLIER or not recent:
        return None
    ended_now = sum(1 for outcome, _, _ in recent if outcome in ENDED_BY_DORA)
    if ended_now and not earlier_ended:
        return (
            f"newly ended by dora: {ended_now} of the last {len(recent)} stops terminated or "
            f"killed, none of the {earlier_count} before"
        )
    now = bounded_percentile([(s, c) for _, s, c in recent if s is not None], 95)
    before = earlier_p95
    if before is None or now is None or before.at_least or before.seconds <= 0:
        return None
    if now.seconds > REGRESSION_FACTOR * before.seconds:
        mark = "≥ " if now.at_least else ""
        return (
            f"stop→exit grew: p95 of the last {len(recent)} stops {mark}{now.seconds:.2f} s, "
            f"{now.seconds / before.seconds:.1f} × the {before.seconds:.2f} s of the "
            f"{earlier_count} before"
        )
    return None


@dataclass
class HistorySuggestion:
    suggestion: Suggestion
    stops: int  # how many stops it rests on
    node_stops: int
    nodes: List[grace.NodeStats]


def suggest_grace(
    views: Iterable[NodeStopView],
    dataflow: Optional[str],
    margin: float,
    descriptor: Optional[str] = None,
    dora_version: Optional[str] = None,
) -> HistorySuggestion:
    """A grace from the real stops recorded, by the rules of analysis.grace."""
    times: Dict[str, List[grace.StopTime]] = {}
    stops = set()
    count = 0
    name = dataflow
    latest_grace = None
    for view in views:
        if not matches(view, dataflow, descriptor) or view.stop_to_exit_s is None:
            continue
        times.setdefault(view.node, []).append(
            grace.StopTime(view.stop_to_exit_s, view.censored, view.cause)
        )
        stops.add(view.stop)
        count += 1
        name = name or view.dataflow_name
        latest_grace = view.grace_s if view.grace_s is not None else latest_grace
    stats = grace.stats_by_node(times)
    suggestion = grace.suggest(stats, name or "DATAFLOW", margin, latest_grace, dora_version)
    return HistorySuggestion(suggestion, len(stops), count, stats)


def since_cutoff(age_s: Optional[float]) -> Optional[float]:
    return time.time() - age_s if age_s is not None else None
