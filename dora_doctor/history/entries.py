"""A diagnosed shutdown as history rows: one stop per dataflow, one row per node.

The facts come from the same code every report uses: the stop request, the grace in force
and who asked from :func:`~dora_doctor.analysis.timeline.build_shutdown`, each node's outcome,
stop→exit, cause and GIL holder from the diagnosis. A node dora ended (terminated, killed) or
that was still running is *censored*: its stop→exit is a lower bound, as in
:mod:`~dora_doctor.analysis.grace`.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import List, Optional

from dora_doctor.analysis.findings import Diagnosis, NodeFinding
from dora_doctor.analysis.timeline import Shutdown, build_shutdown
from dora_doctor.history.store import NodeStopRow, StopRow
from dora_doctor.logs import events as logevents
from dora_doctor.recording.model import Recording

CENSORED_OUTCOMES = ("terminated", "killed", "running")

# Stop kinds. dora's logs name some directly; the others are written by `watch`, which sees
# the command (node stop, restart) or the daemon's line (health or startup kill) itself.
STOP = "stop"
NODE_STOP = "node-stop"
RESTART = "restart"
FINISH = "finish"
HEALTH_KILL = "health-kill"
STARTUP_KILL = "startup-kill"
DORA_GONE = "dora-gone"
UNKNOWN = "unknown"

# who asked, by the pattern of the stop line that was read
_REQUESTED_BY = {
    "stop-sent": "dora stop",
    "stop-after": "dora run --stop-after",
    "stop-ctrlc": "Ctrl-C on dora run",
}


def descriptor_hash(path: Optional[Path]) -> Optional[str]:
    """A short hash of the dataflow file's bytes, so an edited dataflow is told apart."""
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def stops_from(
    recording: Recording,
    diagnosis: Diagnosis,
    writer: str,
    recording_path: Optional[Path] = None,
    descriptor: Optional[str] = None,
    name: Optional[str] = None,
    kind: Optional[str] = None,
) -> List[StopRow]:
    """One :class:`StopRow` per dataflow of the recording that has a stop or an end to show.

    A dataflow with neither a stop request nor any node's end (a watch that ended while it
    ran on) is no stop and adds nothing. ``name`` replaces the dataflow's own name (the
    rehearsals' generated names say nothing; the file's stem does).
    """
    rows = []
    for dataflow in recording.dataflows:
        finding = next((d for d in diagnosis.dataflows if d.uuid == dataflow.uuid), None)
        if finding is None:
            continue
        shutdown = build_shutdown(recording, dataflow)
        started = _started(shutdown)
        if started is None:
            continue
        machines = {n.machine for n in finding.nodes if n.machine}
        row = StopRow(
            dataflow_uuid=dataflow.uuid,
            dataflow_name=name or dataflow.name or finding.name,
            descriptor_hash=descriptor,
            machine=machines.pop() if len(machines) == 1 else None,
            host=socket.gethostname(),
            dora_version=recording.dora_version or diagnosis.dora_version,
            kind=kind or _kind(shutdown),
            requested_by=_requested_by(recording, shutdown),
            grace_s=shutdown.grace.seconds if shutdown.grace else None,
            grace_source=shutdown.grace.source if shutdown.grace else None,
            started_at=started,
            writer=writer,
        )
        where = str(recording_path.resolve()) if recording_path is not None else None
        row.nodes = [_node_row(n, where) for n in finding.nodes if _took_part(n)]
        if row.nodes:
            rows.append(row)
    return rows


def _took_part(node: NodeFinding) -> bool:
    return node.outcome is not None or node.stop_duration_s is not None


def _started(shutdown: Shutdown) -> Optional[float]:
    """The stop request's time; for a dataflow that ended on its own, its first node's end."""
    if shutdown.request is not None:
        return shutdown.request.time
    ends = [e.time for e in shutdown.ends if e.time is not None]
    return min(ends) if ends else None


def _kind(shutdown: Shutdown) -> str:
    if shutdown.request is not None:
        return STOP
    if shutdown.ended or any(e.finished for e in shutdown.ends):
        return FINISH
    return UNKNOWN


def _requested_by(recording: Recording, shutdown: Shutdown) -> Optional[str]:
    if shutdown.request is None:
        return None
    if shutdown.request.source == "dora-doctor":
        return "dora-doctor"
    stops = [
        e
        for e in recording.logs
        if e.kind == logevents.STOP_REQUEST and e.time == shutdown.request.time
    ]
    return _REQUESTED_BY.get(stops[0].pattern, stops[0].pattern) if stops else None


def _node_row(node: NodeFinding, recording: Optional[str]) -> NodeStopRow:
    holder = node.gil.holders[0] if node.gil.holders else None
    return NodeStopRow(
        node=node.id,
        machine=node.machine,
        outcome=node.outcome,
        stop_to_exit_s=node.stop_duration_s,
        censored=node.outcome in CENSORED_OUTCOMES,
        cause=node.cause,
        holder_thread=holder.thread if holder else None,
        holder_function=holder.function if holder else None,
        holder_file=holder.file if holder else None,
        holder_line=holder.line if holder else None,
        samples=node.samples if node.python else None,
        recording=recording if node.python and node.samples else None,
    )
