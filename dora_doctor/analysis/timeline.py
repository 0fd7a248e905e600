"""When the stop was asked for, when each node ended and how: the facts of one shutdown.

Built from a recording alone (process exits seen by the stop watch, dora's log lines, the
stop dora-doctor issued itself). What dora's logs do not say is inferred only where the
inference is exact, and each fact keeps its source so a report can say where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from dora_doctor.dora.versions import (
    default_grace_s,
    has_sigterm_step,
    kill_line_trustworthy,
    logs_node_exits,
    release_line,
    sigkill_factor,
)
from dora_doctor.logs import events as logevents
from dora_doctor.logs import patterns
from dora_doctor.model import (
    DAEMON_CONNECTED,
    DAEMON_NOT_CONNECTED,
    SIGTERM_CAUGHT,
    SIGTERM_NOT_CAUGHT,
    CpuSegment,
    Dataflow,
    NodeProcess,
    Stack,
    StackSegment,
    ThreadTrack,
    parse_exit_status,
)
from dora_doctor.recording.model import Recording

# The thread that reads dora's events, as every dora Python example does it.
EVENT_THREAD = "MainThread"
# A node ended "at the grace deadline" when it ended this close to it.
DEADLINE_TOLERANCE_S = 0.25
# dora's daemon logs a node's end within this long of the process exit.
LOG_MATCH_S = 2.0
# A kill line dated this long after the node had ended (its exit line or its observed exit)
# is about a process that was already gone: dora 0.5.0 logs one for every node of the
# dataflow 1 s after the SIGTERM step (measured: crunch SIGTERMed at 2.00 s, its exit line
# at 2.01 s, "killed due to not stopping within the 3s grace period" at 3.00 s).
KILL_AFTER_END_S = 0.3
# What `dora stop` printed, as dora-doctor saw it return (capture/session.py).
STOP_RETURNED = "stop-returned"


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
    # why nothing dora-doctor has tells how the node ended (then its outcome is unknown)
    unknown_reason: Optional[str] = None
    # whether it catches SIGTERM, as (time, caught) from discovery (time None) and each change
    # seen while sampling; a handler installed late shows here, not in ``node.catches_sigterm``
    sigcgt: List[Tuple[Optional[float], bool]] = field(default_factory=list)
    # exit_code / signal are the kernel's, read from the zombie's /proc/PID/stat by the stop
    # watch (not dora's line): positive evidence of how it ended, on every dora
    status_seen: bool = False
    # whether its process held a TCP connection to its daemon (has called Node()), as (time,
    # connected): the first read and the change to connected; empty when never read
    daemon_link: List[Tuple[float, bool]] = field(default_factory=list)


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
    # node → the daemon's line that it killed the node on its own (1.1.0): "failed to connect
    # within Ss …, killing" (startup_timeout) or "unresponsive for …ms (timeout: Ss), killing"
    dora_kills: Dict[str, logevents.LogEvent] = field(default_factory=dict)

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
    mine = [e for e in mine if not _kill_of_an_earlier_stop(e, request)]
    version = recording.dora_version
    cli = stop_output_events(mine)
    ends = [node_end(recording, dataflow, n, mine, version, cli) for n in dataflow.nodes]
    kills = [
        e
        for e in mine
        if e.kind == logevents.GRACE_KILL
        and e.node in node_ids
        and any(end.grace_kill is e for end in ends)
    ]
    daemon_read = bool(recording.header.get("logs", {}).get("daemon")) or any(
        e.source == "daemon" for e in mine
    )
    grace = find_grace(request, kills, ends, version)
    for end in ends:
        without_exit_lines(end, request, grace, version, mine)
        if end.unknown_reason:
            end.evidence.append(unknown_end(end.unknown_reason))
    return Shutdown(
        dataflow=dataflow,
        request=request,
        grace=grace,
        ends=ends,
        recording_end=recording_span(recording)[1],
        daemon_log_read=daemon_read,
        dora_version=recording.dora_version,
        ended=any(e.kind == logevents.DATAFLOW_END for e in mine),
        dora_kills=dora_kills(mine, ends),
    )


def dora_kills(
    events: List[logevents.LogEvent], ends: List[NodeEnd]
) -> Dict[str, logevents.LogEvent]:
    """The startup-timeout or health-check kill that ended each node, if one did (neither is
    a stop: dora SIGKILLs at once, with no STOP and no grace). The line names the node but
    not its dataflow, so it counts only for a node SIGKILLed within LOG_MATCH_S after it (dora
    kills at once: 1.4 ms between the two lines in the 1.1.0 fixture): another dataflow's
    node of the same name ends at another moment."""
    found: Dict[str, logevents.LogEvent] = {}
    for end in ends:
        if end.signal != 9 or end.time is None:
            continue
        for kill in events:
            if (
                kill.kind in (logevents.STARTUP_KILL, logevents.HEALTH_KILL)
                and kill.node == end.node.id
                and kill.time is not None
                and 0.0 <= end.time - kill.time <= LOG_MATCH_S
            ):
                found[end.node.id] = kill
    return found


def _kill_of_an_earlier_stop(event: logevents.LogEvent, request: Optional[StopRequest]) -> bool:
    """A kill line that names no dataflow (0.4/0.5's "X was killed due to not stopping …")
    written before this dataflow's stop was asked for is about another dataflow's stop: one
    daemon serves them all and node ids repeat (``talker`` in each), and 0.5.x writes it up
    to 1.5 × grace after that other stop, while this dataflow already runs."""
    if event.kind not in (logevents.GRACE_KILL, logevents.KILLED) or event.dataflow is not None:
        return False
    if request is None or event.time is None:
        return False
    slack = 1.0 if event.clock else 0.0  # a time of day in whole seconds
    return event.time < request.time - slack


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
    # no one asked, but the daemon's finish drain stopped a node left running after the
    # dataflow finished: that is its stop, at the daemon's line (STOP, then the ladder)
    drains = [
        e
        for e in events
        if e.kind == logevents.FINISH_DRAIN and e.dataflow == uuid and e.time is not None
    ]
    if drains:
        first = min(drains, key=lambda e: e.time or 0.0)
        assert first.time is not None
        return StopRequest(first.time, FINISH_DRAIN_SOURCE)
    return None


# StopRequest.source of a stop the daemon's finish drain escalated
FINISH_DRAIN_SOURCE = "finish drain"


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
        return Grace(
            default, f"assumed: dora {dora_version}'s default, as no --grace-duration was seen"
        )
    return None


def stop_output_events(events: List[logevents.LogEvent]) -> List[logevents.LogEvent]:
    """The lines of ``dora stop``'s own output (as dora-doctor ran it) that the pattern table
    knows, e.g. 0.4.1's ``Node `crunch` failed: node was killed by dora … (SIGTERM)``: the
    only word about a node's end from a dora whose daemon logs none."""
    found: List[logevents.LogEvent] = []
    for returned in events:
        if returned.kind != STOP_RETURNED or not returned.text:
            continue
        for line in returned.text.splitlines():
            event = patterns.event_from_message(
                line, returned.time, returned.dataflow, source="dora stop"
            )
            if event is not None and event.node:
                found.append(event)
    return found


def unknown_end(reason: str) -> str:
    """The evidence sentence of an end nothing says the manner of (one wording, so that the
    verdict, which says it with its consequence for the grace, can leave this one out)."""
    return f"How this node ended is unknown: {reason}."


def node_end(
    recording: Recording,
    dataflow: Dataflow,
    node: NodeProcess,
    events: List[logevents.LogEvent],
    dora_version: Optional[str] = None,
    cli: Sequence[logevents.LogEvent] = (),
) -> NodeEnd:
    end = NodeEnd(node)
    exits = [
        e
        for e in recording.events
        if e.dataflow == dataflow.uuid and e.node == node.id and e.kind == "exited"
    ]
    if exits:
        end.time, end.source = exits[0].time, "process"
    if node.catches_sigterm is not None:
        end.sigcgt.append((None, node.catches_sigterm))
    end.sigcgt += [
        (e.time, e.kind == SIGTERM_CAUGHT)
        for e in recording.events
        if e.dataflow == dataflow.uuid
        and e.node == node.id
        and e.kind in (SIGTERM_CAUGHT, SIGTERM_NOT_CAUGHT)
    ]
    end.daemon_link = [
        (e.time, e.kind == DAEMON_CONNECTED)
        for e in recording.events
        if e.dataflow == dataflow.uuid
        and e.node == node.id
        and e.kind in (DAEMON_CONNECTED, DAEMON_NOT_CONNECTED)
    ]
    failures = [e for e in events if e.kind == logevents.NODE_EXIT and e.node == node.id]
    if end.time is not None:
        failures = [e for e in failures if e.time is None or abs(e.time - end.time) <= LOG_MATCH_S]
    if failures:
        failure = min(failures, key=_earliest)
        end.signal, end.exit_code = failure.signal, failure.exit_code
        if end.time is None:
            end.time, end.source, end.coarse = failure.time, "daemon log", failure.clock is not None
        end.evidence.append(f"dora: {failure.text}")
    status = parse_exit_status(exits[0].detail) if exits else None
    if status is not None:
        said = f"exit status {status[0]}" if status[1] is None else f"signal {status[1]}"
        end.evidence.append(
            f"The kernel: {said}, read from /proc/PID/stat before dora reaped the process."
        )
        if not failures:  # dora's line, when there is one, is read from the same waitpid
            (end.exit_code, end.signal), end.status_seen = status, True
    # the daemon's "killed due to not stopping" line and the CLI's "(SIGKILL)" verdict
    kills = [
        e
        for e in events
        if e.kind in (logevents.GRACE_KILL, logevents.KILLED) and e.node == node.id
    ]
    if not failures and not kills:  # `dora stop`'s own verdict, where the daemon said nothing
        kills = [e for e in cli if e.kind == logevents.KILLED and e.node == node.id]
    kills = [k for k in kills if not _termination_verdict(end, k)]
    kills = [k for k in kills if not _kill_after_end(end, k, dora_version)]
    if kills and end.status_seen and end.signal != 9:
        # dora's kill lines come late or about processes long gone (0.5.x): the status wins
        end.evidence.append(
            f"dora: {min(kills, key=_earliest).text} (not taken: the kernel's exit status "
            "says the process was not SIGKILLed)"
        )
        kills = []
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


def _termination_verdict(end: NodeEnd, kill: logevents.LogEvent) -> bool:
    """dora ≥ 0.4's CLI says "killed by dora because it didn't react … (SIGTERM)" for a node
    its SIGTERM step ended: a termination, not a kill. Taken as the end's signal."""
    if kill.kind != logevents.KILLED or kill.signal != 15:
        return False
    if end.signal is None and end.exit_code is None:
        end.signal = 15
    end.evidence.append(f"dora: {kill.text}")
    return True


def _kill_after_end(end: NodeEnd, kill: logevents.LogEvent, dora_version: Optional[str]) -> bool:
    """A kill claim that cannot be true, or cannot be checked on a line that makes it for
    every node (0.5.x): cross-checked against the end dora-doctor already has."""
    if end.time is not None and kill.time is not None and not end.coarse and not kill.clock:
        late = kill.time - end.time
        if late > KILL_AFTER_END_S:
            ended_by = "its exit line" if end.source == "daemon log" else "its process exit"
            end.evidence.append(
                f"dora logged '{kill.text}' {late:.2f} s after the node had ended ({ended_by}): "
                "a process already gone was not killed, so that line is no evidence of a kill."
            )
            return True
        return False
    if kill.kind == logevents.GRACE_KILL and not kill_line_trustworthy(dora_version):
        if end.signal == 9:
            return False  # its exit line says SIGKILL too
        line = release_line(dora_version).series
        end.evidence.append(
            f"dora {line} logs '{kill.text}' for every node of a stopped dataflow, also ones "
            "that had exited, and no exit line or observed exit confirms it: not evidence of "
            "a kill."
        )
        if end.time is None and end.signal is None and not end.finished:
            end.unknown_reason = f"the only line about its end is dora {line}'s kill line"
        return True
    return False


def without_exit_lines(
    end: NodeEnd,
    request: Optional[StopRequest],
    grace: Optional[Grace],
    dora_version: Optional[str],
    events: List[logevents.LogEvent],
) -> None:
    """A node's end on a dora whose daemon logs no node exit (0.4.x): its silence is no
    proof of a clean exit, so the outcome comes from what dora-doctor saw of the process.

    - exited before the grace, with ``dora stop`` returning 0 and naming no failed node: clean
      (dora reports every failed node of the dataflow to the stop command);
    - ended at dora's SIGTERM point (the grace of dora-doctor's own stop) or its SIGKILL point:
      that signal, inferred from the exit time and said so;
    - otherwise (no process seen, no stop result, between the rungs): unknown, with the reason.
    """
    if logs_node_exits(dora_version) or end.unknown_reason or end.status_seen:
        return
    if end.signal is not None or end.exit_code not in (None, 0) or end.grace_kill or end.finished:
        return
    if end.running_at_end:
        return
    line = release_line(dora_version).series
    silent = f"dora {line}'s daemon logs no node exit"
    if end.time is None or end.source != "process" or request is None:
        end.unknown_reason = f"{silent}, and dora-doctor did not see this process end"
        return
    after = end.time - request.time
    # dora's own STOP (the coordinator's line; dora-doctor's request precedes it by the CLI's
    # start-up, 0.2-0.5 s here) and the grace dora-doctor gave: the rungs are exact only then
    sent = [
        e.time
        for e in events
        if e.kind == logevents.STOP_REQUEST
        and e.source == "coordinator"
        and e.dataflow == end.node.dataflow
        and e.time is not None
    ]
    if sent and request.grace_s:
        since = end.time - min(sent)
        rungs = [(request.grace_s * sigkill_factor(dora_version), 9, "SIGKILL")]
        if has_sigterm_step(dora_version):
            rungs.insert(0, (request.grace_s, 15, "SIGTERM"))
        for at, signal, name in rungs:
            if at - 0.02 <= since <= at + DEADLINE_TOLERANCE_S:
                end.signal = signal
                end.evidence.append(
                    f"{silent}: the process ended {since:.2f} s after dora's STOP, at the "
                    f"{at:g} s point where dora sends {name} (inferred from the exit "
                    "dora-doctor saw)."
                )
                return
    if grace is not None and after < grace.seconds - DEADLINE_TOLERANCE_S:
        returned = [e for e in events if e.kind == STOP_RETURNED and e.source == "dora-doctor"]
        if any(e.exit_code == 0 for e in returned):
            end.evidence.append(
                f"{silent}: the process ended {after:.2f} s after the stop, before any signal, "
                "and `dora stop` returned 0, naming no failed node."
            )
            end.finished = True  # dora's own word that no node failed: positive evidence
            return
        end.unknown_reason = (
            f"{silent}; the process ended {after:.2f} s after the stop, before any signal, but "
            "no exit status or `dora stop` result says how"
        )
        return
    end.unknown_reason = (
        f"{silent}; the process ended {after:.2f} s after the stop, at no step of dora's "
        "ladder dora-doctor can tell"
    )


def _earliest(event: logevents.LogEvent) -> Tuple[bool, float]:
    """Exact timestamps before times of day dated afterwards (whole seconds on the CLI)."""
    return (event.clock is not None, event.time if event.time is not None else float("inf"))


def event_thread(seg: StackSegment) -> Optional[ThreadTrack]:
    """The thread that reads dora events in a segment: MainThread, as in the dora API docs,
    else (py-spy gave no names) the thread whose native id is the process id, which on Linux
    is the main thread, else the oldest thread (lowest id)."""
    thread = next((t for t in seg.threads if t.name == EVENT_THREAD), None)
    if thread is None:  # unnamed (py-spy could not read names): the main thread's id is the PID
        thread = next((t for t in seg.threads if t.thread_id == seg.pid), None)
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
