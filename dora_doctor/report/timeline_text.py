"""A compact text timeline per node, one character per time bucket, for the terminal.

Per thread: ``#`` it held the GIL most of the bucket, ``+`` some of it, ``~`` it ran
without the GIL (C code that released it), ``.`` it waited (or, with no CPU data, did not hold
the GIL), blank: not sampled. Markers on the axis: ``S``
stop requested, ``T`` grace deadline (SIGTERM on dora ≥ 0.4), ``K`` SIGKILL point, ``X`` the
process ended. GIL shares come per py-spy segment (one second) and CPU shares per quarter
second, so a bucket shows the shares of the windows that cover it.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from dora_doctor.analysis.result import Analysis, DataflowAnalysis
from dora_doctor.analysis.timeline import (
    EXIT,
    GRACE,
    HELD,
    KILL,
    RUNNING,
    SOME,
    STOP,
)
from dora_doctor.report import RenderOptions
from dora_doctor.textsafe import for_terminal

LABEL = 22
WIDTH = 100
MAX_THREADS = 4
LEGEND = "  # held GIL  + some  ~ ran without it  . waited   S stop  T grace  K SIGKILL  X exit"
MARKS = {HELD: "#", SOME: "+", RUNNING: "~"}
LETTERS = {STOP: "S", GRACE: "T", KILL: "K", EXIT: "X"}


class TimelineRenderer:
    """Only the text timelines, every dataflow's, at most ``WIDTH`` columns wide."""

    name = "timeline"
    suffix = ".txt"

    def render(self, analysis: Analysis, options: RenderOptions) -> str:
        rows: List[str] = []
        for dataflow in analysis.dataflows:
            rows += lines(analysis, dataflow, min(options.width, WIDTH))
        return "".join(row + "\n" for row in rows)


def lines(analysis: Analysis, dataflow: DataflowAnalysis, width: int = WIDTH) -> List[str]:
    """The timeline of one dataflow, a line per node and per thread (names escaped: these
    lines go to a terminal as they are)."""
    recording = analysis.recording
    recorded = dataflow.recorded
    if recorded is None:
        return []
    stacks = [s for s in recording.stacks if s.dataflow == recorded.uuid]
    if not stacks:
        return []
    start = min(s.start for s in stacks)
    end = max(s.end for s in stacks)
    buckets = max(10, width - LABEL - 1)
    step = (end - start) / buckets or 1.0
    out = [f"{'':<{LABEL}} {_axis(dataflow, start, step, buckets, None)}"]
    for node in recorded.nodes:
        node_stacks = [s for s in stacks if s.node == node.id]
        if not node_stacks:
            continue
        threads: Dict[int, str] = {}
        for segment in node_stacks:
            for thread in segment.threads:
                threads.setdefault(thread.thread_id, thread.name)
        ending = _axis(dataflow, start, step, buckets, node.id)
        out.append(f"{for_terminal(node.id)[:LABEL]:<{LABEL}} {ending}")
        for thread_id, name in list(threads.items())[:MAX_THREADS]:
            row = _thread_row(analysis, recorded.uuid, node.id, thread_id, start, step, buckets)
            out.append(f"  {for_terminal(name)[: LABEL - 2]:<{LABEL - 2}} {row}")
    out.append(LEGEND)
    return out


def _thread_row(
    analysis: Analysis,
    dataflow: str,
    node: str,
    thread_id: int,
    start: float,
    step: float,
    buckets: int,
) -> str:
    sampled = [" "] * buckets
    for segment in analysis.recording.stacks:
        if segment.dataflow != dataflow or segment.node != node:
            continue
        for thread in segment.threads:
            if thread.thread_id == thread_id:
                for span in thread.spans:
                    for i in _bucket_range(span.start, span.end, start, step, buckets):
                        sampled[i] = "."
    states = analysis.lane_states(dataflow, node, thread_id, start, step, buckets)
    for i, state in states.items():
        if sampled[i] != " ":
            sampled[i] = MARKS.get(state, ".")
    return "".join(sampled)


def _axis(
    dataflow: DataflowAnalysis, start: float, step: float, buckets: int, node: Optional[str]
) -> str:
    """The dataflow's axis (stop, grace, SIGKILL) or a node's (its stop and its exit)."""
    row = ["─"] * buckets
    marks: List[Tuple[float, str]] = []
    if node is None:
        marks += [(m.time, LETTERS[m.kind]) for m in dataflow.dataflow_markers]
    else:
        end = dataflow.exit_of(node)
        if end is not None:
            marks.append((end.time, "X"))
        marks += [(m.time, "S") for m in dataflow.markers if m.kind == STOP]
    for when, letter in marks:
        index = int((when - start) / step)
        if 0 <= index < buckets:
            row[index] = letter
        elif index >= buckets and letter == "X":
            row[-1] = letter
    return "".join(row)


def _bucket_range(a: float, b: float, start: float, step: float, buckets: int) -> range:
    first = max(0, int((a - start) / step))
    last = min(buckets - 1, int((b - start) / step))
    return range(first, last + 1)
