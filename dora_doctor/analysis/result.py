"""The one object every renderer reads: the diagnosis, the recording it came from (locals
already redacted as asked), and per dataflow its shutdown and the markers of the signal
ladder.

Renderers used to rebuild the shutdown and redo the stop / grace / SIGTERM / SIGKILL
arithmetic each on their own, with dora's version rules imported into the report stage; a
fix to one then missed the others. Here it is computed once, by :func:`analyse`, and a
renderer only draws what it finds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from dora_doctor.analysis import redaction
from dora_doctor.analysis.diagnose import report_from_recording
from dora_doctor.analysis.findings import DataflowFinding, Diagnosis
from dora_doctor.analysis.timeline import (
    EXIT,
    Marker,
    Shutdown,
    build_shutdown,
    markers,
    thread_lane_states,
)
from dora_doctor.logs.events import STOP_REQUEST
from dora_doctor.model import Dataflow
from dora_doctor.recording.model import Recording

__all__ = ["Analysis", "DataflowAnalysis", "STOP_REQUEST", "analyse"]


@dataclass
class DataflowAnalysis:
    """One dataflow of the diagnosis, with what the recording holds about it (``recorded``
    and ``shutdown`` are None when the recording does not have it, e.g. a post-mortem
    read from logs alone)."""

    finding: DataflowFinding
    recorded: Optional[Dataflow] = None
    shutdown: Optional[Shutdown] = None
    markers: List[Marker] = field(default_factory=list)

    @property
    def dataflow_markers(self) -> List[Marker]:
        """Stop, grace deadline and SIGKILL point: the dataflow's, not one node's."""
        return [m for m in self.markers if m.kind != EXIT]

    def exit_of(self, node: str) -> Optional[Marker]:
        return next((m for m in self.markers if m.kind == EXIT and m.node == node), None)


@dataclass
class Analysis:
    diagnosis: Diagnosis
    recording: Recording
    dataflows: List[DataflowAnalysis]

    def lane_states(
        self, uuid: str, node: str, thread_id: int, start: float, step: float, buckets: int
    ) -> Dict[int, str]:
        """Per time bucket of one thread, its lane state (timeline.LANE_STATES), on the
        bucket grid the renderer draws: the HTML page and the text timeline differ in
        width, never in what a bucket means."""
        return thread_lane_states(self.recording, uuid, node, thread_id, start, step, buckets)

    def time_span(self, uuid: str) -> Optional[Tuple[float, float]]:
        """First and last moment the recording knows of this dataflow (samples, events)."""
        times = [t for s in self.recording.stacks if s.dataflow == uuid for t in (s.start, s.end)]
        times += [e.time for e in self.recording.events if e.dataflow == uuid]
        return (min(times), max(times)) if times else None


def analyse(
    recording: Recording,
    show_locals: bool = False,
    diagnosis: Optional[Diagnosis] = None,
) -> Analysis:
    """Everything a renderer needs from one recording. ``diagnosis`` is made from the
    recording unless given (a post-mortem brings its own, from the logs); local variables'
    values are redacted unless ``show_locals``, in the recording and in the findings."""
    if diagnosis is None:
        diagnosis = report_from_recording(recording, show_locals=show_locals)
    dataflows = []
    for finding in diagnosis.dataflows:
        recorded = next((d for d in recording.dataflows if d.uuid == finding.uuid), None)
        shutdown = build_shutdown(recording, recorded) if recorded is not None else None
        dataflows.append(
            DataflowAnalysis(
                finding=finding,
                recorded=recorded,
                shutdown=shutdown,
                markers=markers(shutdown) if shutdown is not None else [],
            )
        )
    return Analysis(
        diagnosis=diagnosis,
        recording=redaction.redacted(recording, show_locals),
        dataflows=dataflows,
    )
