"""A diagnosed shutdown as history rows: one stop per dataflow, one row per node.

The facts come from the same code every report uses: the stop request, the grace in force
and who asked from :func:`~dora_doctor.analysis.timeline.build_shutdown`, each node's outcome,
stop→exit, cause and GIL holder from the diagnosis. A node dora ended (terminated, killed) or
that was still running is *censored*: its stop→exit is a lower bound, as in
:mod:`~dora_doctor.analysis.grace`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import socket
from pathlib import Path
from typing import List, Optional

from dora_doctor.analysis.findings import Diagnosis, NodeFinding
from dora_doctor.analysis.timeline import FINISH_DRAIN_SOURCE, Shutdown, build_shutdown
from dora_doctor.history.store import SAME_STOP_S, NodeStopRow, StopRow
from dora_doctor.logs import events as logevents
from dora_doctor.recording.model import Recording

CENSORED_OUTCOMES = ("terminated", "killed", "running")

# Stop kinds, each from a line dora writes or a fact the watch observed (see docs/diagnosis.md,
# "Stop kinds"). dora 1.1.0 writes no line for a restart under a restart policy: `watch` calls
# it one when it sees the node's new process.
STOP = "stop"  # `dora stop` in any form, `dora run --stop-after`, Ctrl-C on `dora run`
NODE_STOP = "node-stop"  # `dora node stop` of one node
RESTART = "restart"  # `dora node restart`, or a restart policy (a new process seen)
FINISH = "finish"  # ended on its own
HEALTH_KILL = "health-kill"
STARTUP_KILL = "startup-kill"
DORA_DOWN = "dora-down"  # the daemon or coordinator went away before any stop request
UNKNOWN = "unknown"

_GONE = (logevents.DAEMON_GONE, logevents.COORDINATOR_GONE, logevents.DAEMON_LEFT)

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
            kind=kind or _kind(recording, shutdown),
            requested_by=_requested_by(recording, shutdown),
            grace_s=shutdown.grace.seconds if shutdown.grace else None,
            grace_source=shutdown.grace.source if shutdown.grace else None,
            started_at=started,
            writer=writer,
        )
        where = str(recording_path.resolve()) if recording_path is not None else None
        # dora going away ends nodes with no line and no request: a node whose exit was seen
        # then took part, its outcome unknown (the daemon was not there to say how it ended)
        exited = (
            {e.node for e in recording.events if e.kind == "exited"}
            if row.kind == DORA_DOWN
            else set()
        )
        row.nodes = [_node_row(n, where) for n in finding.nodes if _took_part(n) or n.id in exited]
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


def _kind(recording: Recording, shutdown: Shutdown) -> str:
    """The kind from the evidence, the earliest cause first: dora gone before any request,
    a request, a daemon's kill line, an end on its own."""
    request = shutdown.request.time if shutdown.request is not None else None
    # a daemon gone before the request: the stop reached no daemon. A coordinator gone and a
    # request later: a coordinator came back (its line is the request), the nodes ran on
    # under their daemon, and the stop is an ordinary one
    gone = [
        e.time
        for e in recording.logs
        if e.kind in _GONE
        and e.time is not None
        and (request is None or e.kind != logevents.COORDINATOR_GONE)
    ]
    if gone and (request is None or min(gone) < request):
        return DORA_DOWN
    if shutdown.request is not None:
        # the daemon's finish drain stopping a straggler: the dataflow ended on its own
        return FINISH if shutdown.request.source == FINISH_DRAIN_SOURCE else STOP
    names = {n.id for d in recording.dataflows for n in d.nodes}
    kills = [e for e in recording.logs if e.kind in (logevents.HEALTH_KILL, logevents.STARTUP_KILL)]
    for kill in sorted(kills, key=lambda e: e.time or 0.0):
        if kill.node in names:
            return HEALTH_KILL if kill.kind == logevents.HEALTH_KILL else STARTUP_KILL
    if shutdown.ended or any(e.finished for e in shutdown.ends):
        return FINISH
    return UNKNOWN


def node_view(recording: Recording, node: str) -> Recording:
    """The recording as if ``node`` were its dataflow's only node, and its own ``dora node
    stop|restart`` (if any) the stop request: one node's stop while the dataflow ran on.

    The dataflow's own stop requests are left out: they come later, and belong to the stop
    of the nodes that were still running then.
    """
    view = copy.copy(recording)
    view.dataflows = []
    for dataflow in recording.dataflows:
        mine = copy.copy(dataflow)
        mine.nodes = [n for n in dataflow.nodes if n.id == node]
        view.dataflows.append(mine)
    uuids = {d.uuid for d in recording.dataflows}
    logs = [e for e in recording.logs if e.kind != logevents.STOP_REQUEST]
    asked = [
        e
        for e in recording.logs
        if e.kind in logevents.NODE_REQUESTS
        and e.node == node
        and e.dataflow in uuids | {None}
        and e.time is not None
    ]
    if asked:
        first = min(asked, key=lambda e: e.time or 0.0)
        owner = first.dataflow or next(iter(uuids), None)
        logs.append(dataclasses.replace(first, kind=logevents.STOP_REQUEST, dataflow=owner))
    view.logs = logs
    return view


def without_node(recording: Recording, node: str) -> Recording:
    """The recording without ``node`` (its own stop is already recorded on its own)."""
    view = copy.copy(recording)
    view.dataflows = []
    for dataflow in recording.dataflows:
        rest = copy.copy(dataflow)
        rest.nodes = [n for n in dataflow.nodes if n.id != node]
        view.dataflows.append(rest)
    return view


def merge_stops(rows: List[StopRow]) -> List[StopRow]:
    """One dataflow's stop seen by several followers (a restarted node has its own): rows of
    the same kind within SAME_STOP_S of each other become one, with every node's row."""
    merged: List[StopRow] = []
    for row in sorted(rows, key=lambda r: r.started_at or 0.0):
        same = next(
            (
                m
                for m in merged
                if m.kind == row.kind
                and m.dataflow_uuid == row.dataflow_uuid
                and m.started_at is not None
                and row.started_at is not None
                and abs(m.started_at - row.started_at) <= SAME_STOP_S
            ),
            None,
        )
        if same is None:
            merged.append(row)
            continue
        known = {n.node for n in same.nodes}
        same.nodes += [n for n in row.nodes if n.node not in known]
        same.grace_s = same.grace_s if same.grace_s is not None else row.grace_s
        same.requested_by = same.requested_by or row.requested_by
    return merged


def node_kind(recording: Recording, node: str, restarted: bool) -> str:
    """The kind of one node's stop while its dataflow ran on (``recording`` from node_view):
    the coordinator's word first, then what the watch saw (a new process), then the daemon's
    kill lines, then dora going away; a node that ended cleanly by itself finished."""
    mine = [e for e in recording.logs if e.node == node or e.node is None]
    kinds = {e.kind for e in mine}
    asked = [e for e in mine if e.kind in logevents.NODE_REQUESTS]
    if asked:
        first = min(asked, key=lambda e: e.time or 0.0)
        return RESTART if first.kind == logevents.NODE_RESTART_REQUEST else NODE_STOP
    if restarted:
        return RESTART
    if logevents.HEALTH_KILL in kinds:
        return HEALTH_KILL
    if logevents.STARTUP_KILL in kinds:
        return STARTUP_KILL
    if kinds & set(_GONE):
        return DORA_DOWN
    return FINISH if logevents.NODE_FINISHED in kinds or not (kinds & _FAILED) else UNKNOWN


_FAILED = {logevents.NODE_EXIT, logevents.GRACE_KILL, logevents.KILLED}


def node_stop_rows(
    recording: Recording,
    diagnosis: Diagnosis,
    node: str,
    kind: str,
    writer: str,
    recording_path: Optional[Path] = None,
) -> List[StopRow]:
    """The history entry of one node's own stop (see :func:`node_view`).

    A node that ended by itself with no line from dora (a clean exit is the one end the
    daemon does not log) has no outcome the diagnosis can claim; its stop is still one, at
    the time its process was seen gone, with the outcome left unknown."""
    rows = stops_from(recording, diagnosis, writer, recording_path, kind=kind)
    if not rows:
        rows = _unclaimed(recording, diagnosis, node, kind, writer, recording_path)
    for row in rows:
        row.nodes = [n for n in row.nodes if n.node == node]
        row.single_node = node
    return [row for row in rows if row.nodes]


def _unclaimed(
    recording: Recording,
    diagnosis: Diagnosis,
    node: str,
    kind: str,
    writer: str,
    recording_path: Optional[Path],
) -> List[StopRow]:
    exits = [e.time for e in recording.events if e.node == node and e.kind == "exited"]
    dataflow = recording.dataflows[0] if recording.dataflows else None
    finding = next(
        (n for d in diagnosis.dataflows for n in d.nodes if n.id == node),
        None,
    )
    if not exits or dataflow is None or finding is None:
        return []
    row = StopRow(
        dataflow_uuid=dataflow.uuid,
        dataflow_name=dataflow.name,
        machine=finding.machine,
        host=socket.gethostname(),
        dora_version=recording.dora_version or diagnosis.dora_version,
        kind=kind,
        started_at=min(exits),
        writer=writer,
    )
    where = str(recording_path.resolve()) if recording_path is not None else None
    row.nodes = [_node_row(finding, where)]
    return [row]


def _requested_by(recording: Recording, shutdown: Shutdown) -> Optional[str]:
    if shutdown.request is None:
        return None
    if shutdown.request.source == "dora-doctor":
        return "dora-doctor"
    if shutdown.request.source == FINISH_DRAIN_SOURCE:
        return "dora's finish drain"
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
