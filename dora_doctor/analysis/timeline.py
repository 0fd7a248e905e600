"""When the stop was asked for, when each node ended and how: the facts of one shutdown.

Built from a recording alone (process exits seen by the stop watch, dora's log lines, the
stop dora-doctor issued itself). What dora's logs do not say is inferred only where the
inference is exact, and each fact keeps its source so a report can say where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from dora_doctor.dora.versions import default_grace_s, has_sigterm_step, sigkill_factor
from dora_doctor.logs import events as logevents
from dora_doctor.model import CpuSegment, Dataflow, NodeProcess, Stack, StackSegment, ThreadTrack
from dora_doctor.recording.jsonl import Recording

# The thread that reads dora's events, as every dora Python example does it.
EVENT_THREAD = "MainThread"
# A node ended "at the grace deadline" when it ended this close to it.
DEADLINE_TOLERANCE_S = 0.25
# dora's daemon logs a node's end within this long of the process exit.
LOG_MATCH_S = 2.0


@dataclass
class StopRequest:
    time: float
    source: str  # "dora-doctor", "coordinator", or "inferred"
    grace_s: Optional[float] = None


@dataclass
class Grace:
    seconds: float
    source: str


@dataclass
class NodeEnd:
    """How one node's process ended (or that it did not, by the end of the recording)."""

    node: NodeProcess
    time: Optional[float] = None
    source: Optional[str] = None  # "process" (the stop watch) or "daemon log"
    signal: Optional[int] = None
    exit_code: Optional[int] = None
    grace_kill: Optional[logevents.LogEvent] = None
    running_at_end: bool = False
    finished: bool = False  # dora said it finished successfully
    coarse: bool = False  # the time is a CLI time of day: whole seconds, rounded down
    evidence: List[str] = field(default_factory=list)


@dataclass
class Shutdown:
    dataflow: Dataflow
    request: Optional[StopRequest]
    grace: Optional[Grace]
    ends: List[NodeEnd]
    recording_end: Optional[float]
    daemon_log_read: bool
    dora_version: Optional[str]
    ended: bool = False  # dora said the dataflow (or `dora run`'s daemon) finished

    def end_of(self, node_id: str) -> Optional[NodeEnd]:
        return next((e for e in self.ends if e.node.id == node_id), None)


def recording_span(recording: Recording) -> Tuple[Optional[float], Optional[float]]:
    times = [s.start for s in recording.stacks] + [s.end for s in recording.stacks]
    times += [e.time for e in recording.events] + [e.time for e in recording.logs if e.time]
    return (min(times), max(times)) if times else (None, None)


def build_shutdown(recording: Recording, dataflow: Dataflow) -> Shutdown:
    mine = [e for e in recording.logs if e.dataflow in (None, dataflow.uuid)]
    node_ids = {n.id for n in dataflow.nodes}
    request = find_request(mine, dataflow.uuid)
    ends = [node_end(recording, dataflow, n, mine) for n in dataflow.nodes]
    kills = [e for e in mine if e.kind == logevents.GRACE_KILL and e.node in node_ids]
    daemon_read = bool(recording.header.get("logs", {}).get("daemon")) or any(
        e.source == "daemon" for e in mine
    )
    grace = find_grace(request, kills, ends, recording.dora_version)
    return Shutdown(
        dataflow=dataflow,
        request=request,
        grace=grace,
        ends=ends,
        recording_end=recording_span(recording)[1],
        daemon_log_read=daemon_read,
        dora_version=recording.dora_version,
        ended=any(e.kind == logevents.DATAFLOW_END for e in mine),
    )


def find_request(events: List[logevents.LogEvent], uuid: str) -> Optional[StopRequest]:
    """dora-doctor's own stop is exact; else the coordinator's "sent stop" line."""
    requests = [e for e in events if e.kind == logevents.STOP_REQUEST and e.time is not None]
    own = [e for e in requests if e.source == "dora-doctor"]
    if own:
        first = min(own, key=lambda e: e.time or 0.0)
        assert first.time is not None
        return StopRequest(first.time, "dora-doctor", first.seconds)
    theirs = [e for e in requests if e.dataflow == uuid]
    if theirs:
        first = min(theirs, key=lambda e: e.time or 0.0)
        assert first.time is not None
        return StopRequest(first.time, first.source or "coordinator")
    return None


def find_grace(
    request: Optional[StopRequest],
    kills: List[logevents.LogEvent],
    ends: List[NodeEnd],
    dora_version: Optional[str],
) -> Optional[Grace]:
    """The grace period in force, from the most to the least direct evidence."""
    if request is not None and request.grace_s:
        return Grace(request.grace_s, "--grace-duration of the stop dora-doctor issued")
    for kill in kills:
        if kill.seconds:
            factor = sigkill_factor(dora_version)
            return Grace(
                round(kill.seconds / factor, 3),
                f"dora's kill line ({kill.seconds:g} s = {factor:g} × grace)",
            )
    if request is not None:
        # dora ≥ 0.4 sends SIGTERM exactly at the grace deadline
        terms = [
            e.time - request.time
            for e in ends
            if e.signal == 15 and e.time is not None and e.time >= request.time
        ]
        if terms and (sigkill_factor(dora_version) > 1.0):
            return Grace(round(min(terms), 1), "time of the first SIGTERM after the stop")
    default = default_grace_s(dora_version)
    if default is not None and request is not None:
        return Grace(default, f"dora {dora_version} default (no --grace-duration seen)")
    return None


def node_end(
    recording: Recording, dataflow: Dataflow, node: NodeProcess, events: List[logevents.LogEvent]
) -> NodeEnd:
    end = NodeEnd(node)
    exits = [
        e
        for e in recording.events
        if e.dataflow == dataflow.uuid and e.node == node.id and e.kind == "exited"
    ]
    if exits:
        end.time, end.source = exits[0].time, "process"
    failures = [e for e in events if e.kind == logevents.NODE_EXIT and e.node == node.id]
    if end.time is not None:
        failures = [e for e in failures if e.time is None or abs(e.time - end.time) <= LOG_MATCH_S]
    if failures:
        failure = min(failures, key=_earliest)
        end.signal, end.exit_code = failure.signal, failure.exit_code
        if end.time is None:
            end.time, end.source, end.coarse = failure.time, "daemon log", failure.clock is not None
        end.evidence.append(f"dora: {failure.text}")
    # the daemon's "killed due to not stopping" line and the CLI's "(SIGKILL)" verdict
    kills = [
        e
        for e in events
        if e.kind in (logevents.GRACE_KILL, logevents.KILLED) and e.node == node.id
    ]
    if kills:
        end.grace_kill = min(kills, key=_earliest)
        end.evidence.append(f"dora: {end.grace_kill.text}")
        if end.time is None:
            end.time, end.source = end.grace_kill.time, "daemon log"
            end.coarse = end.grace_kill.clock is not None
    finished = [e for e in events if e.kind == logevents.NODE_FINISHED and e.node == node.id]
    if finished and end.time is None and not failures and not kills:
        # dora ≥ 0.4 also says "finished successfully" after a SIGTERM, hence last in line
        first = min(finished, key=_earliest)
        end.finished, end.coarse = True, first.clock is not None
        end.time, end.source = first.time, "dora log"
    if end.time is None:
        end.running_at_end = bool(recording.stacks or recording.events) and not any(
            e.node == node.id and e.kind == "sampler-error" for e in recording.events
        )
    return end


def _earliest(event: logevents.LogEvent) -> Tuple[bool, float]:
    """Exact timestamps before times of day dated afterwards (whole seconds on the CLI)."""
    return (event.clock is not None, event.time if event.time is not None else float("inf"))


def event_thread(seg: StackSegment) -> Optional[ThreadTrack]:
    """The thread that reads dora events in a segment: MainThread, as in the dora API docs,
    else the oldest thread (lowest id) when py-spy gave no names."""
    thread = next((t for t in seg.threads if t.name == EVENT_THREAD), None)
    if thread is None and seg.threads:
        thread = min(seg.threads, key=lambda t: t.thread_id)
    return thread


def main_thread_spans(stacks: List[StackSegment]) -> List[Tuple[float, float, Stack]]:
    """The spans of the thread that reads dora events (:func:`event_thread`)."""
    spans: List[Tuple[float, float, Stack]] = []
    for thread in filter(None, map(event_thread, stacks)):
        spans.extend((s.start, s.end, s.stack) for s in thread.spans)
    spans.sort(key=lambda s: s[0])
    return spans


def thread_gil_shares(
    recording: Recording, dataflow: str, node: str, thread_id: int
) -> List[Tuple[float, float, float]]:
    """(start, end, share) per sampling segment: how much of it ``thread_id`` held the GIL.

    The timelines draw from this; counts come per segment, so shares do too.
    """
    shares = []
    for gil in recording.gil:
        if gil.dataflow == dataflow and gil.node == node:
            held = sum(s.count for s in gil.stacks if s.thread_id == thread_id)
            ticks = max(1.0, (gil.end - gil.start) * recording.sample_rate)
            shares.append((gil.start, gil.end, held / ticks))
    return shares


def thread_cpu_shares(
    recording: Recording, dataflow: str, node: str, thread_id: int
) -> List[Tuple[float, float, float]]:
    """(start, end, share) per CPU window: how busy ``thread_id`` was (:func:`busy_share`).

    Empty for recordings made before CPU windows were recorded, or away from Linux.
    """
    return [
        (cpu.start, cpu.end, busy_share(cpu, thread_id))
        for cpu in recording.cpu
        if cpu.dataflow == dataflow and cpu.node == node and cpu.end > cpu.start
    ]


def busy_share(window: CpuSegment, thread_id: int) -> float:
    """How much of a window the thread ran or wanted to run.

    The larger of its CPU time share and its runnable share: on a loaded machine a running
    thread waits for a CPU part of the time, which CPU time misses and the state R does not.
    """
    length = window.end - window.start
    used = window.cpu.get(thread_id, 0.0) / length if length > 0 else 0.0
    return min(1.0, max(used, window.runnable.get(thread_id, 0.0)))


# On a CPU this much more of the time than it held the GIL: running native code without it.
RUNNING_SHARE = 0.5
# What a thread was doing over a stretch of time, as the lanes draw it.
HELD, SOME, RUNNING, WAITING, NOT_HELD = "held", "some", "running", "waiting", "free"
LANE_STATES = {
    HELD: "held the GIL",
    SOME: "held the GIL part of the time",
    RUNNING: "ran without the GIL (C code that released it)",
    WAITING: "waited (idle, blocked, or waiting for the GIL)",
    NOT_HELD: "did not hold the GIL (no CPU data: running or waiting)",
}


def lane_state(gil_share: float, cpu_share: Optional[float]) -> str:
    """One word for a thread over a stretch of time, from its GIL and CPU shares.

    A thread that holds the GIL is almost always on a CPU, so CPU time beyond the GIL share
    is time spent running without it; a thread with neither was waiting.
    """
    if gil_share >= 0.5:
        return HELD
    if cpu_share is not None and cpu_share - gil_share >= RUNNING_SHARE:
        return RUNNING
    if gil_share > 0.02:
        return SOME
    if cpu_share is None:
        return NOT_HELD
    return WAITING


def bucket_shares(
    shares: List[Tuple[float, float, float]], start: float, step: float, buckets: int
) -> Dict[int, float]:
    """Spread (start, end, share) windows over fixed time buckets; a later window wins."""
    at: Dict[int, float] = {}
    for first_t, last_t, share in shares:
        first = max(0, int((first_t - start) / step))
        last = min(buckets - 1, int((last_t - start) / step))
        for bucket in range(first, last + 1):
            at[bucket] = share
    return at


def thread_lane_states(
    recording: Recording,
    dataflow: str,
    node: str,
    thread_id: int,
    start: float,
    step: float,
    buckets: int,
) -> Dict[int, str]:
    """The lane state of each time bucket of one thread: what both timelines draw."""
    where = (recording, dataflow, node, thread_id)
    gil = bucket_shares(thread_gil_shares(*where), start, step, buckets)
    cpu = bucket_shares(thread_cpu_shares(*where), start, step, buckets)
    return {b: lane_state(gil.get(b, 0.0), cpu.get(b)) for b in range(buckets)}


# The kinds of marker a shutdown has, in the order dora acts.
STOP, GRACE, KILL, EXIT = "stop", "grace", "kill", "exit"


@dataclass(frozen=True)
class Marker:
    """One moment of a shutdown every timeline draws: the stop request, the grace deadline
    (SIGTERM on dora >= 0.4, SIGKILL on 0.3.x: ``sends`` says which), dora's SIGKILL point
    (only where a SIGTERM came first) and each node's exit."""

    kind: str  # STOP, GRACE, KILL or EXIT
    time: float
    node: Optional[str] = None  # EXIT: whose
    source: Optional[str] = None  # STOP: who asked (StopRequest.source)
    sends: Optional[str] = None  # GRACE: "SIGTERM" or "SIGKILL"
    signal: Optional[int] = None  # EXIT: the signal that ended it, when one did


def markers(shutdown: Shutdown) -> List[Marker]:
    """The dataflow's markers (stop, grace, kill) then one exit per node that ended, in
    the nodes' order: the signal ladder's arithmetic, done once for every renderer."""
    marks: List[Marker] = []
    request = shutdown.request
    if request is not None:
        marks.append(Marker(STOP, request.time, source=request.source))
        if shutdown.grace is not None:
            sigterm = has_sigterm_step(shutdown.dora_version)
            deadline = request.time + shutdown.grace.seconds
            marks.append(Marker(GRACE, deadline, sends="SIGTERM" if sigterm else "SIGKILL"))
            if sigterm:
                factor = sigkill_factor(shutdown.dora_version)
                marks.append(Marker(KILL, request.time + shutdown.grace.seconds * factor))
    for end in shutdown.ends:
        if end.time is not None:
            marks.append(Marker(EXIT, end.time, node=end.node.id, signal=end.signal))
    return marks
