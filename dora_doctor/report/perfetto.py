"""Chrome trace-event JSON (opens in ui.perfetto.dev and chrome://tracing).

One process per node, one track per thread with the sampled stacks as nested slices, one
"GIL" track per node with who held it in each sampling segment, and instant events for the
stop request, the grace deadline, dora's SIGKILL point and each process exit, so users can
dig into a shutdown with tools they know. Local variables (``inspect --locals``) are instant
events too, with values redacted unless ``show_locals``: a trace file gets shared.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from dora_doctor.analysis.result import Analysis, DataflowAnalysis
from dora_doctor.analysis.timeline import EXIT, GRACE, KILL, STOP
from dora_doctor.recording.model import Recording
from dora_doctor.report import RenderOptions

GIL_TID = 0  # thread ids from py-spy are OS ids, never 0


class PerfettoRenderer:
    name = "perfetto"
    suffix = ".json"

    def render(self, analysis: Analysis, options: RenderOptions) -> str:
        return json.dumps(trace_events(analysis), separators=(",", ":")) + "\n"


def trace_events(analysis: Analysis) -> Dict[str, Any]:
    """The trace of the analysis's recording (its locals redacted as the analysis is)."""
    recording = analysis.recording
    times = [s.start for s in recording.stacks] + [g.start for g in recording.gil]
    times += [e.time for e in recording.events] + [e.time for e in recording.logs if e.time]
    origin = min(times) if times else 0.0

    def us(t: float) -> int:
        return int(round((t - origin) * 1e6))

    events: List[Dict[str, Any]] = []
    for analysed in analysis.dataflows:
        dataflow = analysed.recorded
        if dataflow is None:
            continue
        pids = {}
        for index, node in enumerate(dataflow.nodes, start=1):
            pid = node.sample_pid or node.pid or index
            pids[node.id] = pid
            events.append(_meta("process_name", pid, 0, f"{node.id} ({dataflow.label})"))
            events.append(_meta("thread_name", pid, GIL_TID, "GIL holder"))
        for segment in recording.stacks:
            if segment.dataflow != dataflow.uuid or segment.node not in pids:
                continue
            pid = pids[segment.node]
            for thread in segment.threads:
                events.append(_meta("thread_name", pid, thread.thread_id, thread.name))
                for span in thread.spans:
                    for depth, frame in enumerate(span.stack):
                        events.append(
                            {
                                "ph": "X",
                                "name": frame.function,
                                "cat": "stack",
                                "pid": pid,
                                "tid": thread.thread_id,
                                "ts": us(span.start),
                                "dur": max(1, us(span.end) - us(span.start)),
                                "args": {"file": frame.file, "line": frame.line, "depth": depth},
                            }
                        )
        for gil_segment in recording.gil:
            if (
                gil_segment.dataflow != dataflow.uuid
                or gil_segment.node not in pids
                or not gil_segment.stacks
            ):
                continue
            top = max(gil_segment.stacks, key=lambda s: s.count)
            leaf = top.stack[-1].function if top.stack else "(no Python frame)"
            events.append(
                {
                    "ph": "X",
                    "name": f"{top.thread}: {leaf}",
                    "cat": "gil",
                    "pid": pids[gil_segment.node],
                    "tid": GIL_TID,
                    "ts": us(gil_segment.start),
                    "dur": max(1, us(gil_segment.end) - us(gil_segment.start)),
                    "args": {
                        "samples_with_a_holder": gil_segment.held,
                        "holders": {
                            f"{s.thread}:{s.stack[-1].function if s.stack else '-'}": s.count
                            for s in gil_segment.stacks
                        },
                    },
                }
            )
        events += _markers(analysed, pids, us)
        events += _locals(recording, dataflow.uuid, pids, us)
    events.sort(key=lambda e: (e["pid"], e["tid"], e["ts"] if e["ph"] != "M" else -1))
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"origin_unix_s": origin}}


def _markers(analysed: DataflowAnalysis, pids: Dict[str, int], us: Any) -> List[Dict[str, Any]]:
    marks: List[Dict[str, Any]] = []

    def instant(name: str, when: float, pid: int, scope: str = "p") -> None:
        marks.append(
            {
                "ph": "i",
                "name": name,
                "cat": "shutdown",
                "s": scope,
                "pid": pid,
                "tid": GIL_TID,
                "ts": us(when),
            }
        )

    for node_id, pid in pids.items():
        end = analysed.exit_of(node_id)
        for mark in analysed.dataflow_markers + ([end] if end is not None else []):
            instant(_name(mark.kind, mark.sends, mark.signal), mark.time, pid)
    return marks


def _name(kind: str, sends: Optional[str], signal: Optional[int]) -> str:
    if kind == STOP:
        return "STOP requested"
    if kind == GRACE:
        return f"grace deadline ({sends})"
    if kind == KILL:
        return "SIGKILL point"
    assert kind == EXIT
    return "process exit" + (f" (signal {signal})" if signal else "")


def _locals(recording: Recording, uuid: str, pids: Dict[str, int], us: Any) -> List[Dict[str, Any]]:
    """One instant event per locals snapshot, on the node's GIL track; the variables are
    its args, by thread and frame."""
    marks: List[Dict[str, Any]] = []
    for snapshot in recording.locals:
        if snapshot.dataflow != uuid or snapshot.node not in pids:
            continue
        args: Dict[str, Any] = {}
        for thread in snapshot.threads:
            for frame in thread.frames:
                where = f"{thread.name}: {frame.function} ({frame.file}:{frame.line})"
                args[where] = {v.name: v.value for v in frame.variables}
        if snapshot.error:
            args["error"] = snapshot.error
        marks.append(
            {
                "ph": "i",
                "name": f"local variables ({snapshot.moment})",
                "cat": "locals",
                "s": "p",
                "pid": pids[snapshot.node],
                "tid": GIL_TID,
                "ts": us(snapshot.time),
                "args": args,
            }
        )
    return marks


def _meta(name: str, pid: int, tid: int, value: str) -> Dict[str, Any]:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "ts": 0, "args": {"name": value}}
