"""Turn a recording into findings: per node, how much it was sampled and who held the GIL.

Pure functions over :class:`~dora_doctor.recording.Recording`; nothing here talks to a
process, so every result can be reproduced from the file alone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from dora_doctor.findings import DataflowFinding, GilFinding, Holder, NodeFinding, Report
from dora_doctor.model import Frame, GilSegment, StackSegment
from dora_doctor.recording import Recording

# A holder whose innermost Python frame did not move for this long while it held the GIL
# was inside one C call: Python code moves from line to line far faster than this.
NATIVE_MIN_STILL_S = 0.25
MAX_HOLDERS = 5

Window = Tuple[float, float]


@dataclass(frozen=True)
class HolderKey:
    thread_id: int
    thread: str
    leaf: Frame


def report_from_recording(recording: Recording, window: Optional[Window] = None) -> Report:
    report = Report(dora_version=recording.dora_version)
    report.recording = str(recording.path) if recording.path else None
    for dataflow in recording.dataflows:
        finding = DataflowFinding(uuid=dataflow.uuid, name=dataflow.name)
        for node in dataflow.nodes:
            stacks = [
                s for s in recording.stacks if s.dataflow == dataflow.uuid and s.node == node.id
            ]
            gil = [g for g in recording.gil if g.dataflow == dataflow.uuid and g.node == node.id]
            node_finding = NodeFinding(
                id=node.id,
                pid=node.pid,
                python=node.python,
                python_version=node.python_version,
                skipped=node.skip_reason,
            )
            fill_sampling(node_finding, stacks, gil, window)
            for event in recording.events:
                if (
                    event.dataflow == dataflow.uuid
                    and event.node == node.id
                    and event.kind == "sampler-error"
                ):
                    node_finding.skipped = event.detail
            finding.nodes.append(node_finding)
        report.dataflows.append(finding)
    return report


def fill_sampling(
    finding: NodeFinding,
    stacks: List[StackSegment],
    gil: List[GilSegment],
    window: Optional[Window] = None,
) -> None:
    """Sample count, rate, GIL share and holders of one node over ``window`` (or all)."""
    ticks = sum(_share_of(s.start, s.end, window) * s.ticks for s in stacks)
    covered = sum(_overlap(s.start, s.end, window) for s in stacks)
    finding.samples = int(round(ticks))
    finding.sample_rate_hz = round(ticks / covered, 1) if covered > 0 else None
    finding.gil = gil_finding(stacks, gil, window, ticks, finding.sample_rate_hz)
    finding.top_frame = top_frame(stacks, gil)


def gil_finding(
    stacks: List[StackSegment],
    gil: List[GilSegment],
    window: Optional[Window],
    ticks: float,
    rate_hz: Optional[float] = None,
) -> GilFinding:
    if ticks <= 0 or not gil:
        return GilFinding()
    counts: Dict[HolderKey, float] = defaultdict(float)
    held = 0.0
    for seg in gil:
        part = _share_of(seg.start, seg.end, window)
        held += part * seg.held
        for stack in seg.stacks:
            if stack.stack:
                counts[HolderKey(stack.thread_id, stack.thread, stack.stack[-1])] += (
                    part * stack.count
                )
    holders = [
        Holder(
            thread=key.thread or f"thread {key.thread_id}",
            function=key.leaf.function,
            file=key.leaf.file,
            line=key.leaf.line,
            share=round(min(1.0, count / ticks), 3),
            native=holder_is_native(stacks, key, window)
            if rate_hz and count / rate_hz >= NATIVE_MIN_STILL_S
            else False,
        )
        for key, count in sorted(counts.items(), key=lambda kv: -kv[1])[:MAX_HOLDERS]
        if count > 0
    ]
    return GilFinding(held_share=round(min(1.0, held / ticks), 3), holders=holders)


def holder_is_native(
    stacks: Iterable[StackSegment], key: HolderKey, window: Optional[Window]
) -> Optional[bool]:
    """Was the holder stuck on one Python line (a C call) rather than running Python code?"""
    seen = False
    for seg in stacks:
        if _overlap(seg.start, seg.end, window) <= 0:
            continue
        for thread in seg.threads:
            if thread.thread_id != key.thread_id:
                continue
            for span in thread.spans:
                if span.stack and span.stack[-1] == key.leaf:
                    seen = True
                    if span.end - span.start >= NATIVE_MIN_STILL_S:
                        return True
    return False if seen else None


def top_frame(stacks: List[StackSegment], gil: List[GilSegment]) -> Optional[str]:
    """Where the node is now: the latest GIL holder's frame, else its main thread's."""
    if gil and gil[-1].stacks:
        best = max(gil[-1].stacks, key=lambda s: s.count)
        if best.stack:
            leaf = best.stack[-1]
            return f"{best.thread or best.thread_id}: {leaf.function} ({leaf.where()})"
    if stacks:
        threads = stacks[-1].threads
        main = next((t for t in threads if t.name == "MainThread"), threads[0] if threads else None)
        if main is not None and main.spans and main.spans[-1].stack:
            leaf = main.spans[-1].stack[-1]
            return f"{main.name}: {leaf.function} ({leaf.where()})"
    return None


def _overlap(start: float, end: float, window: Optional[Window]) -> float:
    if window is None:
        return max(0.0, end - start)
    return max(0.0, min(end, window[1]) - max(start, window[0]))


def _share_of(start: float, end: float, window: Optional[Window]) -> float:
    """Fraction of a segment inside the window: counts are spread evenly over a segment."""
    if window is None:
        return 1.0
    length = end - start
    if length <= 0:
        return 1.0 if window[0] <= start <= window[1] else 0.0
    return _overlap(start, end, window) / length
