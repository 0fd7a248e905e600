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

from dora_doctor.analysis.timeline import HELD, RUNNING, SOME, build_shutdown, thread_lane_states
from dora_doctor.dora.versions import has_sigterm_step, sigkill_factor
from dora_doctor.model import Dataflow
from dora_doctor.recording.model import Recording

LABEL = 22
WIDTH = 100
MAX_THREADS = 4
LEGEND = "  # held GIL  + some  ~ ran without it  . waited   S stop  T grace  K SIGKILL  X exit"
MARKS = {HELD: "#", SOME: "+", RUNNING: "~"}


def render(recording: Recording, dataflow: Dataflow, width: int = WIDTH) -> List[str]:
    stacks = [s for s in recording.stacks if s.dataflow == dataflow.uuid]
    if not stacks:
        return []
    start = min(s.start for s in stacks)
    end = max(s.end for s in stacks)
    buckets = max(10, width - LABEL - 1)
    step = (end - start) / buckets or 1.0
    shutdown = build_shutdown(recording, dataflow)
    lines = [f"{'':<{LABEL}} {_axis(shutdown, start, step, buckets, None)}"]
    for node in dataflow.nodes:
        node_stacks = [s for s in stacks if s.node == node.id]
        if not node_stacks:
            continue
        threads: Dict[int, str] = {}
        for segment in node_stacks:
            for thread in segment.threads:
                threads.setdefault(thread.thread_id, thread.name)
        ending = _axis(shutdown, start, step, buckets, node.id)
        lines.append(f"{node.id[:LABEL]:<{LABEL}} {ending}")
        for thread_id, name in list(threads.items())[:MAX_THREADS]:
            row = _thread_row(recording, dataflow.uuid, node.id, thread_id, start, step, buckets)
            lines.append(f"  {name[: LABEL - 2]:<{LABEL - 2}} {row}")
    lines.append(LEGEND)
    return lines


def _thread_row(
    recording: Recording,
    dataflow: str,
    node: str,
    thread_id: int,
    start: float,
    step: float,
    buckets: int,
) -> str:
    sampled = [" "] * buckets
    for segment in recording.stacks:
        if segment.dataflow != dataflow or segment.node != node:
            continue
        for thread in segment.threads:
            if thread.thread_id == thread_id:
                for span in thread.spans:
                    for i in _bucket_range(span.start, span.end, start, step, buckets):
                        sampled[i] = "."
    states = thread_lane_states(recording, dataflow, node, thread_id, start, step, buckets)
    for i, state in states.items():
        if sampled[i] != " ":
            sampled[i] = MARKS.get(state, ".")
    return "".join(sampled)


def _axis(shutdown: object, start: float, step: float, buckets: int, node: Optional[str]) -> str:
    from dora_doctor.analysis.timeline import Shutdown

    assert isinstance(shutdown, Shutdown)
    row = ["─"] * buckets
    marks: List[Tuple[float, str]] = []
    request = shutdown.request
    if node is None and request is not None:
        marks.append((request.time, "S"))
        if shutdown.grace is not None:
            marks.append((request.time + shutdown.grace.seconds, "T"))
            if has_sigterm_step(shutdown.dora_version):
                factor = sigkill_factor(shutdown.dora_version)
                marks.append((request.time + shutdown.grace.seconds * factor, "K"))
    if node is not None:
        end = shutdown.end_of(node)
        if end is not None and end.time is not None:
            marks.append((end.time, "X"))
        if request is not None:
            marks.append((request.time, "S"))
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
