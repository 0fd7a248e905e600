"""Decide, per node, how it ended and why: a typed verdict, no sentences.

Pure functions over :class:`~dora_doctor.recording.model.Recording`; nothing here talks to a
process, so every verdict can be reproduced from the file alone. :mod:`wording` turns a
verdict into the sentences and advice a user reads; keeping the two apart is what makes one
decision give one wording (a holder is "inside one C call" everywhere or nowhere).

The shutdown decision compares the thread that reads dora's events (MainThread) before and
after the stop request. Before the stop it waits for events in one place; if it never
leaves that place after the stop, it never saw STOP, and the GIL counts say whether another
thread kept it from running (``gil-contention``) or it was waiting on something else
(``stuck``). If it left that *wait* (not merely moved while busy), it reacted, and whatever it
was doing when dora ended it is a ``slow-shutdown``. Where the evidence is missing or
conflicts the answer is ``unknown``, and each verdict lists what it rests on.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from dora_doctor.analysis.findings import Cause, GilFinding, Holder, Inside, Outcome
from dora_doctor.analysis.timeline import (
    DEADLINE_TOLERANCE_S,
    EVENT_THREAD,
    FINISH_DRAIN_SOURCE,
    GRACE,
    KILL,
    RUNNING_SHARE,
    NodeEnd,
    Shutdown,
    busy_share,
    event_thread,
    main_thread_spans,
    markers,
    unknown_end,
)
from dora_doctor.dora.versions import (
    has_sigterm_step,
    has_startup_timeout,
    logs_node_exits,
    node_api_starts_threads,
    node_thread_names,
    release_line,
    sigterm_counts_clean,
)
from dora_doctor.logs import events as logevents
from dora_doctor.model import (
    REMOTE,
    CpuSegment,
    Frame,
    GilSegment,
    NodeProcess,
    Stack,
    StackSegment,
)
from dora_doctor.recording.model import Recording

# A holder whose innermost frame did not move for this long while it held the GIL was inside
# one C call: Python code moves from line to line far faster than this.
NATIVE_MIN_STILL_S = 0.25
MAX_HOLDERS = 5
# Fewer samples than this in the shutdown window say nothing reliable.
MIN_WINDOW_SAMPLES = 5
# Another thread holding the GIL this much of the time is what kept MainThread from running.
CONTENTION_SHARE = 0.5
# A reaction this late after the stop is worth reporting even when the node stopped in time.
NOTABLE_DELAY_S = 0.5
BASELINE_S = 10.0
# The event thread "waits" for events where it holds the GIL and uses a CPU less than this.
WAITING_SHARE = 0.2
# The stop watch polls node and dora processes in one loop: a node that ended because its
# daemon died can be seen a poll before the daemon's own end.
DORA_GONE_TOLERANCE_S = 0.1

# A thread can hold the GIL with no Python frame at all: in native code called from C, or
# while the interpreter finalises after the last line of the script ran.
NO_PYTHON_FRAME = Frame("(no Python frame: native code or interpreter exit)", "", 0)

# dora's runtime for Python operators runs `python -c "import dora; dora.start_runtime()"`
RUNTIME_FRAME_FILE = "<string>"

Window = Tuple[float, float]
SpanTuple = Tuple[float, float, Stack]


# --- the kinds of facts a verdict carries (wording.py has one sentence per kind) ---------
F_SAMPLING = "sampling-degraded"  # detail
F_DORA_LINE = "dora-line"  # text
F_STOP = "stop"  # time, source, grace, grace_source, outcome, duration, low, high, before
F_SIGTERM_AT_GRACE = "terminated-at-grace"
F_SURVIVED_SIGTERM = "survived-sigterm"  # lived, catches_sigterm
F_ENDED_BEFORE_STOP = "ended-before-stop"
F_FEW_SAMPLES = "few-samples"  # ticks, seconds
F_FAILED_OWN = "failed-own"
F_NO_END_LINE = "no-end-line"  # why
F_WAITED = "waited-never-read"  # thread, wait (Stack), seconds, share, in_time
F_REACTED_CONTENDED = "reacted-contended"  # thread, after_s, share, seconds
F_HOLDER = "holder"  # holder (Holder)
F_STUCK = "stuck-in-wait"  # thread, wait, seconds
F_BUSY = "busy-never-read"  # thread, frame, seconds, share
F_NO_MAIN_SAMPLES = "no-main-samples"  # thread
F_EXIT_WAIT = "exit-wait"  # thread, after_s, frame, threads [(name, Frame)], pool [names]
F_AT_SIGTERM = "moved-at-sigterm"  # thread, frame, seconds, catches_sigterm
F_SLOW = "slow-shutdown"  # thread, after_s, seconds, frame, kind, own_share, on_cpu
F_LAST_SECOND = "last-second"  # holder or None
F_STARTING = "starting"  # since_spawn, frame, module, imported, threads (None: import frames)
F_OPERATOR = "operator"  # frame, operator (its YAML id, or None), node
F_VICTIM = "waiting-for-peer"  # peers, by ("dora" or "starting"), since_spawn
F_DAEMON_ORPHAN = "daemon-gone-orphan"  # pid
F_DAEMON_BEFORE = "daemon-gone-before-end"  # seconds
F_COORDINATOR_GONE = "coordinator-gone"
F_HANDLER_EXIT = "sigterm-handler-exit"  # after_s, grace, catches_sigterm
F_STARTUP_KILL = "startup-killed"  # seconds (dora's startup_timeout), frame (or None)
F_HEALTH_KILL = "health-killed"  # seconds (dora's health_check_timeout), frame (or None)

# --- what a verdict rests on (short strings in the JSON, docs/diagnosis.md) ---------------
R_EXIT_SEEN = "process exit seen"
R_DORA_END = "dora's end line for the node"
R_EXIT_STATUS = "the process's exit status from /proc, before dora reaped it"
R_DATAFLOW_END = "dora's dataflow end line, no failure line for the node"
R_STOP = "stop request"
R_SAMPLES = "py-spy samples of every thread"
R_GIL = "py-spy GIL samples"
R_CPU = "per-thread CPU from /proc"
R_SIGCGT = "SigCgt of /proc/PID/status"
R_SPAWN = "process start time"
R_PEER_STARTING = (
    "a peer still starting (its import frames, no connection to its daemon, or none of dora's "
    "threads yet)"
)
R_NO_DORA_THREADS = "the process's threads from /proc: only Python's, none of dora's"
R_NO_DORA_NAMES = "the process's thread names from /proc: none of those Node() starts"
R_NO_DAEMON_LINK = "the process's TCP connections from /proc: none to its daemon's address"
R_DORA_PEER = "dora's failure message naming the peer"
R_STARTUP_KILL = "dora's startup-timeout kill line for the node"
R_HEALTH_KILL = "dora's health-check kill line for the node"


@dataclass(frozen=True)
class Fact:
    """One observation the decision used, with its numbers; :mod:`wording` says it."""

    kind: str
    data: Dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class NodeVerdict:
    """What was decided about one node, and on what grounds."""

    outcome: Optional[Outcome] = None
    cause: Optional[Cause] = None
    stop_duration_s: Optional[float] = None
    gil: Optional[GilFinding] = None  # over the shutdown window, when one was looked at
    holder: Optional[Holder] = None  # the GIL holder blamed, if any
    facts: List[Fact] = field(default_factory=list)
    rests_on: List[str] = field(default_factory=list)

    def add(self, kind: str, **data: Any) -> None:
        self.facts.append(Fact(kind, data))

    def rest(self, *what: str) -> None:
        for item in what:
            if item not in self.rests_on:
                self.rests_on.append(item)

    def has(self, kind: str) -> bool:
        return any(f.kind == kind for f in self.facts)


@dataclass(frozen=True)
class Samples:
    """One node's samples and how to read them: the same for every question asked of them."""

    stacks: List[StackSegment]
    gil: List[GilSegment]
    cpu: Sequence[CpuSegment] = ()
    prefix: Optional[str] = None  # the interpreter's prefix: its lib/ is the stdlib
    rate_hz: Optional[float] = None  # the sampling rate asked of py-spy
    # dora's runtime: operator id -> its Python file (from the recording's node)
    operators: Dict[str, str] = field(default_factory=dict)

    def holders(self, window: Window) -> GilFinding:
        ticks = window_ticks(self.stacks, window)
        return gil_finding(
            self.stacks, self.gil, window, ticks, self.prefix, self.rate_hz, self.operators
        )


@dataclass(frozen=True)
class HolderKey:
    thread_id: int
    thread: str
    own: Frame  # the innermost frame of the user's code
    leaf: Frame  # where the thread really was (a library frame when inside one)
    operator: Optional[str] = None  # the operator whose code is on the stack (dora's runtime)


# --- whose code a frame is ----------------------------------------------------------------


def is_library(path: str, prefix: Optional[str] = None) -> bool:
    """Standard library, site-/dist-packages, dora's package or a frozen/`<string>` frame:
    code the user does not edit. ``prefix`` (the interpreter's, from the recording) names the
    standard library exactly; without it any ``/lib/pythonX.Y/`` path counts as one."""
    if path.startswith("<") or not path:
        return True
    if "site-packages" in path or "dist-packages" in path:
        return True
    if prefix and path.startswith(prefix.rstrip("/") + "/lib/python"):
        return True
    return "/lib/python" in path


def user_frame(stack: Stack, prefix: Optional[str] = None) -> Frame:
    """The innermost frame of the node's own code: library frames say less about what to fix."""
    for frame in reversed(stack):
        if not is_library(frame.file, prefix):
            return frame
    return stack[-1]


def is_operator_runtime(stack: Stack) -> bool:
    """Is this dora's runtime process running Python operators (``<module> (<string>:1)``)?"""
    return bool(stack) and stack[0].file == RUNTIME_FRAME_FILE and stack[0].function == "<module>"


def operator_of(stack: Stack, operators: Optional[Dict[str, str]]) -> Optional[str]:
    """The operator (its YAML id) whose file the innermost matching frame is in: the code
    that stack is running, as dora's runtime was told it. None without a match: a name is
    only given where the recording says which operator a file is."""
    if not operators:
        return None
    for frame in reversed(stack):
        for ident, source in operators.items():
            if _same_file(frame.file, source):
                return ident
    return None


def _same_file(file: str, source: str) -> bool:
    """py-spy's absolute path against the operator's path (absolute, or relative to the
    dataflow's directory when discovery could not resolve it)."""
    if not file or not source or file.startswith("<"):
        return False
    if file == source:
        return True
    relative = source[2:] if source.startswith("./") else source
    return not relative.startswith("/") and file.endswith("/" + relative)


# --- sampling figures -------------------------------------------------------------------


def window_ticks(stacks: Iterable[StackSegment], window: Optional[Window]) -> float:
    return sum(_share_of(s.start, s.end, window) * s.ticks for s in stacks)


def gil_finding(
    stacks: List[StackSegment],
    gil: List[GilSegment],
    window: Optional[Window],
    ticks: float,
    prefix: Optional[str] = None,
    rate_hz: Optional[float] = None,
    operators: Optional[Dict[str, str]] = None,
) -> GilFinding:
    """Who held the GIL over ``window``: shares are fractions of the samples taken, never > 1.

    The GIL recorder and the stack recorder are separate py-spy processes whose segments do
    not line up: a GIL segment can cover a stretch the stack segments miss (or a restarted
    segment overlap another), so its held samples could outnumber the stack ticks. The
    denominator is the larger of the two, and each holder is counted once per sample.
    """
    if ticks <= 0 or not gil:
        return GilFinding()
    counts: Dict[HolderKey, float] = defaultdict(float)
    held = 0.0
    names = {t.thread_id: t.name for seg in stacks for t in seg.threads if t.name}
    for seg in gil:
        part = _share_of(seg.start, seg.end, window)
        held += part * seg.held
        for stack in seg.stacks:
            if stack.stack:
                own = user_frame(stack.stack, prefix)
                name = stack.thread or names.get(stack.thread_id, "")
                if not name and stack.thread_id == seg.pid:  # Linux: main thread's id is the PID
                    name = EVENT_THREAD
                key = HolderKey(
                    stack.thread_id, name, own, stack.stack[-1], operator_of(stack.stack, operators)
                )
                counts[key] += part * stack.count
    total = max(ticks, held, sum(counts.values()))
    merged: Dict[Tuple[int, str, Frame], List[Tuple[HolderKey, float]]] = defaultdict(list)
    for key, count in counts.items():
        merged[(key.thread_id, key.thread, key.own)].append((key, count))
    holders = []
    for (thread_id, thread, own), parts in sorted(
        merged.items(), key=lambda kv: -sum(c for _k, c in kv[1])
    )[:MAX_HOLDERS]:
        count = sum(c for _k, c in parts)
        if round(count / total, 3) <= 0:
            continue
        leaf_key = max(parts, key=lambda kc: kc[1])[0]
        leaf = leaf_key.leaf
        holders.append(
            Holder(
                thread=thread or f"thread {thread_id}",
                function=own.function,
                file=own.file,
                line=own.line,
                share=round(min(1.0, count / total), 3),
                native=holder_is_native(stacks, thread_id, leaf, window)
                if rate_hz and count / rate_hz >= NATIVE_MIN_STILL_S
                else False,
                inside=Inside(leaf.function, leaf.file, leaf.line) if leaf != own else None,
                operator=leaf_key.operator,
            )
        )
    return GilFinding(held_share=round(min(1.0, held / total), 3), holders=holders)


def other_share(found: GilFinding, main_name: str) -> float:
    """The share of samples in which a thread other than ``main_name`` held the GIL (≤ 1)."""
    return round(min(1.0, sum(h.share for h in found.holders if h.thread != main_name)), 3)


def holder_is_native(
    stacks: Iterable[StackSegment], thread_id: int, leaf: Frame, window: Optional[Window]
) -> Optional[bool]:
    """Was the holder stuck on one Python line (a C call) rather than running Python code?

    Decided from the thread's own spans alone, the same way whatever the window, the
    sampling rate or the dora version: None when the thread was never seen at that frame.
    """
    seen = False
    for seg in stacks:
        if _overlap(seg.start, seg.end, window) <= 0:
            continue
        for thread in seg.threads:
            if thread.thread_id != thread_id:
                continue
            for span in thread.spans:
                if span.stack and span.stack[-1] == leaf:
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
        main = event_thread(stacks[-1])
        if main is not None and main.spans and main.spans[-1].stack:
            leaf = main.spans[-1].stack[-1]
            return f"{main.name}: {leaf.function} ({leaf.where()})"
    return None


# --- how it ended -------------------------------------------------------------------------


def outcome_of(
    end: Optional[NodeEnd], shutdown: Shutdown
) -> Tuple[Outcome, Optional[float], List[str], Optional[str]]:
    """(outcome, stop→exit seconds, what it rests on, why unknown) from how the process ended.

    ``clean`` needs positive evidence: dora's line that the node finished, dora's dataflow
    end line with no failure line for the node from a daemon that logs failures, or exit
    status 0 read from the kernel before dora reaped the process.
    A process seen to vanish with no line from dora is ``unknown``: its end line may simply
    not have been read yet, and a SIGTERM at the grace looks just the same from outside.
    """
    request = shutdown.request
    if end is None:
        return Outcome.UNKNOWN, None, [], "the recording has no trace of this node's end"
    duration = None
    if request is not None and end.time is not None and end.time >= request.time:
        duration = round(end.time - request.time, 3)
    if end.coarse:
        duration = None  # whole seconds only: see the evidence for the range
    seen = [R_EXIT_SEEN] if end.source == "process" else []
    if end.unknown_reason and end.signal is None and end.grace_kill is None:
        # the timeline found no evidence of how it ended (0.4.x logs no exit; a 0.5.x kill
        # line that nothing confirms)
        return Outcome.UNKNOWN, duration, seen, end.unknown_reason
    said = [*seen, R_EXIT_STATUS if end.status_seen else R_DORA_END]
    if end.grace_kill is not None:
        return Outcome.KILLED, duration, [*seen, R_DORA_END], None
    if end.signal == 9:
        return Outcome.KILLED, duration, said, None
    if end.signal == 15:
        return Outcome.TERMINATED, duration, said, None
    if end.signal is not None or end.exit_code not in (None, 0):
        return Outcome.FAILED, duration, said, None
    if end.finished:
        return Outcome.CLEAN, duration, [*seen, R_DORA_END], None
    if end.status_seen:
        return Outcome.CLEAN, duration, said, None  # exit status 0, from the kernel
    if end.node.skip_reason and end.node.skip_reason.startswith(REMOTE) and end.time is None:
        return Outcome.UNKNOWN, None, [], "its own daemon's log, on another machine, was not read"
    if end.time is None and end.running_at_end and not shutdown.ended:
        return Outcome.RUNNING, None, [R_SAMPLES], None
    why = _why_no_clean(shutdown)
    if why is None:
        return Outcome.CLEAN, duration, [*seen, R_DATAFLOW_END], None
    if end.time is None and end.running_at_end:
        return Outcome.RUNNING, None, [R_SAMPLES], None
    return Outcome.UNKNOWN, duration, seen, why


def _why_no_clean(shutdown: Shutdown) -> Optional[str]:
    """Why the absence of a failure line does not prove a clean exit here (None: it does)."""
    if not shutdown.daemon_log_read:
        return "dora's daemon log was not read, and a clean exit is the one end it does not log"
    if not logs_node_exits(shutdown.dora_version):
        return (
            f"dora {shutdown.dora_version}'s daemon logs no node exit at all, so its silence "
            "does not say the node exited cleanly"
        )
    if not shutdown.ended:
        return (
            "no line from dora said the node or its dataflow ended, so its end line may not "
            "have been written yet when the watch ended"
        )
    return None


# --- the decision ---------------------------------------------------------------------------


def decide(
    node: NodeProcess,
    samples: Samples,
    shutdown: Shutdown,
    notes: Sequence[Fact] = (),
    skipped: bool = False,
) -> NodeVerdict:
    """The verdict on one node's shutdown (or, without a stop, how it ended).

    ``notes`` are facts found before the decision (the sampler's own troubles); ``skipped``
    says the node could not be sampled, so nothing is decided from its (absent) samples.
    """
    verdict = NodeVerdict(facts=list(notes))
    stacks, gil = samples.stacks, samples.gil
    end = shutdown.end_of(node.id)
    outcome, verdict.stop_duration_s, rests, why = outcome_of(end, shutdown)
    verdict.outcome = outcome
    verdict.rest(*rests)
    why = _sigterm_handler_exit(verdict, node, samples, shutdown, end) or why
    if end is not None:
        for text in end.evidence:
            verdict.add(F_DORA_LINE, text=text)
    request = shutdown.request
    if request is None:
        if verdict.outcome not in (Outcome.RUNNING,):
            verdict.outcome = None if verdict.outcome == Outcome.UNKNOWN else verdict.outcome
        _killed_by_dora(verdict, node, samples, shutdown)
        return verdict
    verdict.rest(R_STOP)
    verdict.facts.insert(0, Fact(F_STOP, _stop_data(shutdown, node.id, verdict)))
    if why is not None and verdict.outcome == Outcome.UNKNOWN:
        said = unknown_end(why)  # the timeline's sentence of it: said once, with the grace
        verdict.facts = [
            f for f in verdict.facts if f.kind != F_DORA_LINE or f.data["text"] != said
        ]
        verdict.add(F_NO_END_LINE, why=why)
    sigterm_step = has_sigterm_step(shutdown.dora_version)
    if verdict.outcome == Outcome.TERMINATED and sigterm_step and not verdict.has(F_HANDLER_EXIT):
        version = shutdown.dora_version
        verdict.add(
            F_SIGTERM_AT_GRACE,
            # "treating as clean" is the CLI's word on a stop it asked for; a finish drain's
            # SIGTERM left 1.1.0's dataflow `Failed` (measured), so no such claim there
            counts_clean=sigterm_counts_clean(version) and request.source != FINISH_DRAIN_SOURCE,
            # "≥0.4" (a JSON log of no known line) may be either release line
            series=None
            if (version or "").startswith("≥") or request.source == FINISH_DRAIN_SOURCE
            else release_line(version).series,
        )
    if verdict.outcome == Outcome.KILLED and sigterm_step:
        grace = shutdown.grace.seconds if shutdown.grace else None
        lived = (
            verdict.stop_duration_s - grace
            if grace is not None and verdict.stop_duration_s is not None
            else None
        )
        caught = catches_sigterm(node, end, request.time, end.time if end else None)
        verdict.add(F_SURVIVED_SIGTERM, lived=lived, catches_sigterm=caught)
        if caught is not None:
            verdict.rest(R_SIGCGT)
    if not node.python or node.skip_reason or skipped:
        return verdict
    window_end = (end.time if end and end.time else None) or shutdown.recording_end
    if window_end is None or window_end <= request.time:
        if verdict.outcome == Outcome.CLEAN:
            verdict.cause = Cause.NONE
        else:
            verdict.cause = Cause.UNKNOWN
            verdict.add(F_ENDED_BEFORE_STOP)
        return verdict
    window = (request.time, window_end)
    ticks = window_ticks(stacks, window)
    verdict.gil = samples.holders(window)
    if ticks < MIN_WINDOW_SAMPLES:
        if verdict.outcome == Outcome.CLEAN:  # it stopped faster than samples come
            verdict.cause = Cause.NONE
            return verdict
        verdict.cause = Cause.UNKNOWN
        verdict.add(F_FEW_SAMPLES, ticks=ticks, seconds=window_end - request.time)
        return verdict
    verdict.rest(R_SAMPLES)
    if gil:
        verdict.rest(R_GIL)
    _classify(verdict, node, samples, shutdown, window)
    if verdict.outcome in (Outcome.TERMINATED, Outcome.KILLED) and end is not None and end.time:
        _holders_at_the_end(verdict, samples, end.time)
    return verdict


def _killed_by_dora(
    verdict: NodeVerdict, node: NodeProcess, samples: Samples, shutdown: Shutdown
) -> None:
    """dora killed the node on its own, with no stop asked. For ``startup_timeout`` its line
    says the node never connected, so it was still starting; for ``health_check_timeout`` it
    says only that the node sent nothing (1.1.0 counts only what a node sends), which names
    no cause. Where its main thread was is said from the last samples before the kill."""
    kill = shutdown.dora_kills.get(node.id)
    if kill is None or kill.time is None or verdict.outcome != Outcome.KILLED:
        return
    startup = kill.kind == logevents.STARTUP_KILL
    if startup:
        verdict.cause = Cause.STARTING
    verdict.rest(R_STARTUP_KILL if startup else R_HEALTH_KILL)
    main = main_thread_spans(samples.stacks)
    before = [span for span in main if span[0] <= kill.time]
    frame = user_frame(before[-1][2], node.python_prefix) if before else None
    if frame is not None:
        verdict.rest(R_SAMPLES)
    since = kill.time - node.started if node.started is not None else None
    if since is not None and startup:
        verdict.rest(R_SPAWN)
    verdict.add(
        F_STARTUP_KILL if startup else F_HEALTH_KILL,
        seconds=kill.seconds,
        frame=frame,
        since_spawn=since,
    )


def _stop_data(shutdown: Shutdown, node_id: str, verdict: NodeVerdict) -> Dict[str, Any]:
    request = shutdown.request
    assert request is not None
    end = shutdown.end_of(node_id)
    data: Dict[str, Any] = {
        "time": request.time,
        "source": request.source,
        "grace": shutdown.grace.seconds if shutdown.grace else None,
        "grace_source": shutdown.grace.source if shutdown.grace else None,
        "outcome": verdict.outcome,
        "duration": verdict.stop_duration_s,
        "low": None,
        "high": None,
        "before": False,
    }
    if verdict.stop_duration_s is None and end is not None and end.time is not None:
        if end.coarse:
            data["low"] = max(0.0, end.time - request.time)
            data["high"] = end.time + 1.0 - request.time
        elif end.time < request.time:
            data["before"] = True
    return data


def _classify(
    verdict: NodeVerdict, node: NodeProcess, samples: Samples, shutdown: Shutdown, window: Window
) -> None:
    stacks, cpu = samples.stacks, samples.cpu
    request = shutdown.request
    assert request is not None
    prefix = node.python_prefix
    main = main_thread_spans(stacks)
    main_name = EVENT_THREAD
    main_id = next((t.thread_id for t in map(event_thread, stacks) if t is not None), None)
    wait_stack = event_wait_stack(main, request.time)
    if wait_stack is not None and is_operator_runtime(wait_stack):
        _operator_fact(verdict, node, wait_stack)
    at_stop = _stack_at(main, request.time)
    # an import that another thread's GIL keeps from finishing is contention, not start-up:
    # dora's own event loop imports (pyarrow on the first event) inside the user's loop
    starved = verdict.gil is not None and other_share(verdict.gil, main_name) >= CONTENTION_SHARE
    # a node that ended cleanly got STOP once it connected: its start-up delayed nothing that
    # matters, so "starting" would be a cause without a problem (as in _before_node)
    ended_well = verdict.outcome in (Outcome.CLEAN, Outcome.FAILED)
    if at_stop is not None and _importing(at_stop) and not starved and not ended_well:
        _starting(verdict, node, at_stop, request.time, shutdown.dora_version)
        return
    if at_stop is not None and _before_node(verdict, node, samples, at_stop, shutdown):
        return
    if wait_stack is not None and _importing(wait_stack):
        # the samples began during its start-up (a slow import) and it has reached its loop
        # since: the event wait is where it went after the import, not the import itself
        wait_stack = event_wait_stack([s for s in main if not _importing(s[2])], request.time)
    waiting = wait_stack is not None and _was_waiting(samples, main_id, main_name, request.time)
    if cpu and main_id is not None:
        verdict.rest(R_CPU)
    deadline = request.time + shutdown.grace.seconds if shutdown.grace else None
    wait_leaf = wait_stack[-1] if wait_stack else None
    reaction = reaction_time(main, wait_leaf, request.time, window[1]) if waiting else None
    moved = reaction_time(main, wait_leaf, request.time, window[1])
    late = moved is not None and deadline is not None and moved >= deadline - DEADLINE_TOLERANCE_S
    if late:
        reaction = None  # leaving the wait at the SIGTERM is the signal's doing, not STOP's
    if reaction is not None and back_in_wait(main, wait_leaf, reaction, window[1]):
        reaction = None
    assert verdict.gil is not None
    others = [h for h in verdict.gil.holders if h.thread != main_name]
    share = other_share(verdict.gil, main_name)
    ended_by_dora = verdict.outcome in (Outcome.TERMINATED, Outcome.KILLED, Outcome.RUNNING)
    if verdict.outcome == Outcome.UNKNOWN:
        # dora sends nothing but STOP before the grace deadline: a process gone well before it
        # ended without dora's signals (how exactly is still unknown); at or after it, dora's
        # SIGTERM or SIGKILL may have ended it
        ended_by_dora = deadline is None or window[1] >= deadline - DEADLINE_TOLERANCE_S

    if verdict.outcome == Outcome.FAILED:
        verdict.cause = Cause.UNKNOWN
        verdict.add(F_FAILED_OWN)
        return
    if not ended_by_dora:  # clean
        before = (request.time, reaction) if reaction is not None else window
        found = samples.holders(before)
        share_before = other_share(found, main_name)
        delay = (reaction - request.time) if reaction is not None else 0.0
        if delay >= NOTABLE_DELAY_S and share_before >= CONTENTION_SHARE:
            _gil_contention(
                verdict, others, delay, share_before, main_name, wait_stack, in_time=True
            )
        else:
            verdict.cause = Cause.NONE
        return
    if reaction is None:
        if share >= CONTENTION_SHARE:
            _gil_contention(verdict, others, window[1] - window[0], share, main_name, wait_stack)
        elif wait_stack is not None and not waiting:
            verdict.cause = Cause.STUCK
            verdict.add(
                F_BUSY,
                thread=main_name,
                frame=user_frame(wait_stack, prefix),
                seconds=window[1] - window[0],
            )
        else:
            _stuck(verdict, wait_stack, window, main_name)
        if late and moved is not None:
            caught = catches_sigterm(node, shutdown.end_of(node.id), request.time, window[1])
            _late_handler(verdict, node, main, moved, window[1], main_name, caught)
        return
    after = (reaction, window[1])
    # it read STOP and reached the interpreter's exit: threads the exit joins keep it alive,
    # whoever holds the GIL meanwhile (contention would have kept it from getting there)
    if _kept_alive_at_exit(
        verdict, samples, main, main_name, main_id, reaction - request.time, after, prefix
    ):
        return
    found_after = samples.holders(after)
    share_after = other_share(found_after, main_name)
    if share_after >= CONTENTION_SHARE:
        verdict.cause = Cause.GIL_CONTENTION
        verdict.add(
            F_REACTED_CONTENDED,
            thread=main_name,
            after_s=reaction - request.time,
            share=share_after,
            seconds=after[1] - after[0],
        )
        _blame(verdict, [h for h in found_after.holders if h.thread != main_name])
        return
    _slow_shutdown(verdict, samples, main, main_name, main_id, reaction - request.time, after)


def _stack_at(main: Sequence[SpanTuple], moment: float) -> Optional[Stack]:
    """Where the event thread was at ``moment``: the last span begun by then (else the first
    after it). Whether a node is still starting is a question about now, not about where it
    spent most of the samples: an inspect started with the dataflow sees its imports first."""
    before = [s for s in main if s[0] <= moment and s[2]]
    if before:
        return max(before, key=lambda s: s[0])[2]
    after = [s for s in main if s[2]]
    return min(after, key=lambda s: s[0])[2] if after else None


def _importing(stack: Stack) -> bool:
    """The event thread is inside an import (``importlib._bootstrap``): the node is starting."""
    return any(f.function == "_find_and_load" or "importlib._bootstrap" in f.file for f in stack)


def _starting(
    verdict: NodeVerdict,
    node: NodeProcess,
    stack: Stack,
    stop: float,
    dora_version: Optional[str],
    threads: Optional[int] = None,
    named: Sequence[str] = (),
    daemon: Optional[str] = None,
) -> None:
    verdict.cause = Cause.STARTING
    module = next(
        (f.function for f in stack if f.function == "<module>" and not f.file.startswith("<")),
        None,
    )
    since = stop - node.started if node.started is not None else None
    if since is not None:
        verdict.rest(R_SPAWN)
    own = user_frame(stack, node.python_prefix)
    imported = _imported_file(stack)
    verdict.add(
        F_STARTING,
        since_spawn=since,
        frame=own,
        module=module,
        imported=imported,
        startup_timeout=has_startup_timeout(dora_version),
        threads=threads,
        named=list(named),
        daemon=daemon,
    )


# A thread back at its wait's line this much of the time after it moved never left the wait.
BACK_IN_WAIT_SHARE = 0.5

# Fewer /proc windows than this around the stop say too little about the process's threads.
MIN_THREAD_WINDOWS = 2


def _before_node(
    verdict: NodeVerdict,
    node: NodeProcess,
    samples: Samples,
    at_stop: Stack,
    shutdown: Shutdown,
) -> bool:
    """Still starting outside any import (a model loaded in ``main()`` before ``Node()``):
    decided only on positive evidence that ``Node()`` was never called.

    The first evidence, on every release line: ``Node()`` connects to the daemon's address
    before anything else, and /proc lists the process's connections (capture/daemonlink.py).
    Recordings without it fall back on the threads: ``Node()`` starts native threads of
    dora's in the process on the lines where :mod:`dora_doctor.dora.versions` says so, while
    Python code before it has only Python threads. A node busy in its own code after
    ``Node()`` is connected and has dora's threads, so it is never called starting here."""
    if verdict.outcome in (Outcome.CLEAN, Outcome.FAILED) or is_operator_runtime(at_stop):
        return False
    if shutdown.request is None:
        return False
    stop = shutdown.request.time
    names = node_thread_names(shutdown.dora_version)
    link = daemon_link_before(shutdown.end_of(node.id), samples, stop)
    if link is not None:
        if link or _dora_named(samples, (*names, *RUNTIME_THREAD_NAMES)):
            # connected: Node() was called. Or a runtime's threads say it was once (a node
            # that dropped its Node and lives on, first read after it had disconnected, or a
            # library with a tokio runtime of its own): no claim either way
            return False
        verdict.rest(R_NO_DAEMON_LINK)
        _starting(verdict, node, at_stop, stop, shutdown.dora_version, daemon=node.daemon_addr)
        return True
    if not node_api_starts_threads(shutdown.dora_version):
        return False
    threads = without_dora_names(samples, stop, names)
    if threads is not None:
        verdict.rest(R_NO_DORA_NAMES)
        _starting(verdict, node, at_stop, stop, shutdown.dora_version, threads=threads, named=names)
        return True
    threads = python_only_threads(samples, stop)
    if threads is None:
        return False
    verdict.rest(R_NO_DORA_THREADS)
    _starting(verdict, node, at_stop, stop, shutdown.dora_version, threads=threads)
    return True


# Threads of an async runtime like the one dora's node API runs (tokio's, as named on 0.3-0.5
# and 1.x; dora's own): seen in a process without a connection, they veto "not yet at Node()"
RUNTIME_THREAD_NAMES = ("dora-", "tokio-runtime-w", "tokio-rt-worker")


def daemon_link_before(end: Optional[NodeEnd], samples: Samples, stop: float) -> Optional[bool]:
    """Had the process connected to its daemon by the stop? True when a read before the stop
    found the connection; False when reads before the stop found none and none found it
    until a read after the stop still did not; None when the recording cannot tell (another
    transport, an older recording, /proc unreadable, too few windows, or a connection first
    seen at the first read after the stop, which may have come before the stop).

    The tracker reads on every /proc poll until it sees the connection and records only the
    changes; each /proc window ends at a poll, so window ends are known read times. Reads
    are 50 ms apart while sampling at full rate but 4 s apart in ``watch``'s baseline, so
    the last read before the stop can be seconds old."""
    if end is None or not end.daemon_link:
        return None
    links = sorted(end.daemon_link)
    if any(connected for at, connected in links if at <= stop):
        return True
    if not any(at <= stop for at, _ in links) or _if_seen_before_stop(samples, stop, 1) is None:
        return None
    connected_at = next((at for at, connected in links if connected), None)
    if connected_at is None:
        return False  # never connected while it was read
    still_not = any(stop <= seg.end < connected_at for seg in samples.cpu)
    return False if still_not else None


def _dora_named(samples: Samples, names: Sequence[str]) -> bool:
    """Did /proc name any thread of the process like one only ``Node()`` starts?"""
    prefixes = tuple(names)
    return bool(prefixes) and any(
        name.startswith(prefixes) for seg in samples.cpu for name in seg.names.values()
    )


def without_dora_names(samples: Samples, stop: float, names: Sequence[str]) -> Optional[int]:
    """The most threads the process had at once when /proc named its threads and none, in any
    window of the recording, bore a name of the threads only ``Node()`` starts; None when the
    line has no such names, the recording holds no names (older ones), one of dora's was seen,
    or /proc covered too little of the time up to the stop.

    Unlike :func:`python_only_threads` this holds when a library imported first started
    threads of its own (numpy's, pyarrow's): they are not named like dora's."""
    if not names or not samples.cpu:
        return None
    named = {tid: name for seg in samples.cpu for tid, name in seg.names.items()}
    if not named or any(name.startswith(tuple(names)) for name in named.values()):
        return None
    if any(tid not in named for seg in samples.cpu for tid in seg.cpu):
        return None  # a thread the recording never named: it says nothing of that one
    return _if_seen_before_stop(samples, stop, max(len(seg.cpu) for seg in samples.cpu))


def python_only_threads(samples: Samples, stop: float) -> Optional[int]:
    """The most threads the process had at once when every thread /proc listed, in every
    window of the recording, was a Python thread py-spy sampled; None when any other thread
    was seen or /proc covered too little of the time up to the stop to tell.

    py-spy names threads by native id on Python >= 3.11 (matched id by id) but by pthread id
    before (then only the counts can be compared: no more threads than Python's)."""
    python = {t.thread_id for seg in samples.stacks for t in seg.threads}
    python |= {s.thread_id for seg in samples.gil for s in seg.stacks}
    if not python or not samples.cpu:
        return None
    seen = {tid for seg in samples.cpu for tid in seg.cpu}
    by_id = bool(python & seen)
    most = 0
    for seg in samples.cpu:
        tids = set(seg.cpu)
        if by_id and tids - python - {seg.pid}:
            return None
        if not by_id and len(tids) > len(python):
            return None
        most = max(most, len(tids))
    return _if_seen_before_stop(samples, stop, most)


def _if_seen_before_stop(samples: Samples, stop: float, most: int) -> Optional[int]:
    """``most`` threads, when /proc covered enough of the time up to the stop to tell (both
    thread rules); else None."""
    around = [s for s in samples.cpu if s.end > stop - BASELINE_S and s.start <= stop]
    return most if len(around) >= MIN_THREAD_WINDOWS and most > 0 else None


def _imported_file(stack: Stack) -> Optional[str]:
    """The innermost module being run by an import: the file being imported."""
    for frame in reversed(stack):
        if frame.function == "<module>" and not frame.file.startswith("<"):
            return frame.file
    return None


def _was_waiting(samples: Samples, main_id: Optional[int], main_name: str, stop: float) -> bool:
    """Was the event thread idle where it spent the time before the stop: an event wait
    (``node.next()`` releases the GIL and sleeps), not busy code that merely moves on?"""
    before = (stop - BASELINE_S, stop)
    found = samples.holders(before)
    own_gil = sum(h.share for h in found.holders if h.thread == main_name)
    if own_gil >= WAITING_SHARE:
        return False
    if main_id is not None:
        on_cpu = cpu_share(samples.cpu, main_id, before)
        if on_cpu is not None and on_cpu >= WAITING_SHARE + own_gil:
            return False
    return True


def event_wait_stack(main: Sequence[SpanTuple], stop: float) -> Optional[Stack]:
    """Where the event thread spent most of its time before the stop: its event wait."""
    time_at: Dict[Stack, float] = defaultdict(float)
    for start, end, stack in main:
        if end <= stop - BASELINE_S or start >= stop or not stack:
            continue
        time_at[stack] += min(end, stop) - max(start, stop - BASELINE_S)
    if time_at:
        return max(time_at, key=lambda f: time_at[f])
    for _start, end, stack in main:  # attached after the stop: its first known place
        if end > stop and stack:
            return stack
    return None


def reaction_time(
    main: Sequence[SpanTuple], wait_leaf: Optional[Frame], stop: float, until: float
) -> Optional[float]:
    """First moment after the stop at which the event thread is somewhere else."""
    if wait_leaf is None:
        return None
    for start, end, stack in main:
        if end <= stop or start >= until:
            continue
        if stack and stack[-1] != wait_leaf:
            return max(start, stop)
    return None


def back_in_wait(
    main: Sequence[SpanTuple], wait_leaf: Optional[Frame], moved: float, until: float
) -> bool:
    """Did the event thread spend most of the time after it ``moved`` back at its wait's
    line? Then the move was one more turn of the loop it was in, not a reaction to STOP: a
    node sleeping in short steps before Node() (seen on dora 0.4.1, where no thread name tells
    it has not connected) leaves its sleep every step, STOP or not."""
    if wait_leaf is None or until <= moved:
        return False
    there = sum(
        min(end, until) - max(start, moved)
        for start, end, stack in main
        if end > moved and start < until and stack and stack[-1] == wait_leaf
    )
    return there >= BACK_IN_WAIT_SHARE * (until - moved)


def _blame(verdict: NodeVerdict, others: List[Holder]) -> None:
    if others:
        verdict.holder = others[0]
        verdict.add(F_HOLDER, holder=others[0])


def _gil_contention(
    verdict: NodeVerdict,
    others: List[Holder],
    seconds: float,
    share: float,
    main_name: str,
    wait_stack: Optional[Stack],
    in_time: bool = False,
) -> None:
    verdict.cause = Cause.GIL_CONTENTION
    verdict.add(
        F_WAITED, thread=main_name, wait=wait_stack, seconds=seconds, share=share, in_time=in_time
    )
    _blame(verdict, others)


def _stuck(
    verdict: NodeVerdict, wait_stack: Optional[Stack], window: Window, main_name: str
) -> None:
    verdict.cause = Cause.STUCK
    if not wait_stack:
        verdict.add(F_NO_MAIN_SAMPLES, thread=main_name)
        return
    verdict.add(F_STUCK, thread=main_name, wait=wait_stack, seconds=window[1] - window[0])


def _late_handler(
    verdict: NodeVerdict,
    node: NodeProcess,
    main: Sequence[SpanTuple],
    start: float,
    end: float,
    main_name: str,
    caught: Optional[bool],
) -> None:
    places = _time_by_place(main, (start, end), node.python_prefix)
    if not places:
        return
    if caught is not None:
        verdict.rest(R_SIGCGT)
    verdict.add(
        F_AT_SIGTERM,
        thread=main_name,
        frame=_most(places),
        seconds=end - start,
        catches_sigterm=caught,
    )


def _slow_shutdown(
    verdict: NodeVerdict,
    samples: Samples,
    main: Sequence[SpanTuple],
    main_name: str,
    main_id: Optional[int],
    after_s: float,
    after: Window,
) -> None:
    verdict.cause = Cause.SLOW_SHUTDOWN
    places = _time_by_place(main, after)
    frame = _most(places) if places else None
    own = samples.holders(after)
    own_share = sum(h.share for h in own.holders if h.thread == main_name)
    on_cpu = cpu_share(samples.cpu, main_id, after) if main_id is not None else None
    if own_share >= CONTENTION_SHARE:
        how = "python"
    elif on_cpu is not None and on_cpu - own_share >= RUNNING_SHARE:
        how = "native"
    else:
        how = "waiting"
    verdict.add(
        F_SLOW,
        thread=main_name,
        after_s=after_s,
        seconds=after[1] - after[0],
        frame=frame,
        how=how,
        own_share=own_share,
        on_cpu=on_cpu,
    )


def _holders_at_the_end(verdict: NodeVerdict, samples: Samples, ended: float) -> None:
    """Who held the GIL when dora ended the node: what a post-mortem asks first."""
    last = (ended - 1.0, ended)
    ticks = window_ticks(samples.stacks, last)
    if ticks < MIN_WINDOW_SAMPLES:
        return
    found = samples.holders(last)
    verdict.add(
        F_LAST_SECOND,
        holder=found.holders[0] if found.holders else None,
        held=found.held_share,
    )


def _time_by_place(
    main: Sequence[SpanTuple], window: Window, prefix: Optional[str] = None
) -> Dict[Frame, float]:
    """Time the event thread spent per place in ``window``, by its innermost own frame."""
    time_at: Dict[Frame, float] = defaultdict(float)
    for start, end, stack in main:
        overlap = min(end, window[1]) - max(start, window[0])
        if overlap > 0 and stack:
            time_at[user_frame(stack, prefix)] += overlap
    return time_at


def _most(places: Dict[Frame, float]) -> Frame:
    return max(places, key=lambda f: places[f])


# the interpreter's exit joining threads: threading._shutdown (non-daemon threads, and the
# atexit hooks of threading._register_atexit) and concurrent.futures' _python_exit (its
# executors' workers; an atexit hook of its own before Python 3.9)
_EXIT_JOINS = ("_shutdown", "threading._shutdown", "_python_exit")
# a ThreadPoolExecutor's worker thread runs the submitted jobs inside this function
_POOL_WORKER = ("_worker", "concurrent/futures/thread.py")


def _waiting_at_exit(main: Sequence[SpanTuple], window: Window) -> Optional[Frame]:
    """The interpreter's exit waiting for non-daemon threads (``threading._shutdown``) or for
    an executor's workers (``concurrent.futures.thread._python_exit``)."""
    for start, end, stack in main:
        if end <= window[0] or start >= window[1] or not stack:
            continue
        if (
            any(f.function in _EXIT_JOINS for f in stack)
            and window[1] - max(start, window[0]) > 0.5
        ):
            return stack[-1]
    return None


def _operator_fact(verdict: NodeVerdict, node: NodeProcess, wait_stack: Stack) -> None:
    """dora's runtime runs the operator's ``on_event`` on its MainThread: name the operator
    by its YAML id where the recording's node lists its files, else by its file alone."""
    # the operator's entry (on_event) is the outermost frame of the user's code
    entry = next((f for f in wait_stack if not is_library(f.file, node.python_prefix)), None)
    if entry is not None:
        verdict.add(
            F_OPERATOR,
            frame=entry,
            operator=operator_of(wait_stack, node.operators),
            node=node.id,
        )


def _kept_alive_at_exit(
    verdict: NodeVerdict,
    samples: Samples,
    main: Sequence[SpanTuple],
    main_name: str,
    main_id: Optional[int],
    after_s: float,
    after: Window,
    prefix: Optional[str],
) -> bool:
    """After it read STOP, is the event thread at the interpreter's exit, joining threads
    that still run (non-daemon threads, an executor's workers)? Then they are the cause, named
    with the user's function each runs."""
    exit_wait = _waiting_at_exit(main, after)
    if exit_wait is None:
        return False
    verdict.cause = Cause.STUCK
    verdict.add(
        F_EXIT_WAIT,
        thread=main_name,
        after_s=after_s,
        frame=exit_wait,
        threads=_alive_threads(samples.stacks, main_id, after[1], prefix),
        pool=_pool_workers(samples.stacks, main_id, after[1]),
    )
    return True


def _pool_workers(stacks: List[StackSegment], main_id: Optional[int], at: float) -> List[str]:
    """Names of the threads near ``at`` that are a ThreadPoolExecutor's workers running a job:
    they cannot be made daemon threads, and the exit joins them until the job returns."""
    names: List[str] = []
    function, path = _POOL_WORKER
    for seg in stacks:
        for thread in seg.threads:
            if thread.thread_id == main_id:
                continue
            for span in thread.spans:
                if span.end < at - 1.0 or not span.stack:
                    continue
                if any(f.function == function and f.file.endswith(path) for f in span.stack):
                    name = thread.name or f"thread {thread.thread_id}"
                    if name not in names:
                        names.append(name)
    return sorted(names)


def _alive_threads(
    stacks: List[StackSegment], main_id: Optional[int], at: float, prefix: Optional[str]
) -> List[Tuple[str, Frame]]:
    """The threads other than the event thread still running near ``at``: at the
    interpreter's exit these are the non-daemon threads it joins (named, at their own code)."""
    found: Dict[int, Tuple[float, str, Frame]] = {}
    for seg in stacks:
        for thread in seg.threads:
            if thread.thread_id == main_id:
                continue
            for span in thread.spans:
                if span.stack and span.end >= at - 1.0:
                    seen = found.get(thread.thread_id)
                    if seen is None or span.end > seen[0]:
                        name = thread.name or f"thread {thread.thread_id}"
                        found[thread.thread_id] = (span.end, name, user_frame(span.stack, prefix))
    return [(name, frame) for _end, name, frame in sorted(found.values(), key=lambda v: v[1])]


def cpu_share(cpu: Sequence[CpuSegment], thread_id: int, window: Window) -> Optional[float]:
    """How much of ``window`` the thread ran or wanted a CPU (:func:`busy_share` of the /proc
    windows that overlap it, weighted by overlap); None without CPU data for the window."""
    used = covered = 0.0
    for seg in cpu:
        overlap = _overlap(seg.start, seg.end, window)
        if seg.end <= seg.start or overlap <= 0:
            continue
        used += busy_share(seg, thread_id) * overlap
        covered += overlap
    if covered < 0.5 * (window[1] - window[0]) or covered <= 0:
        return None
    return min(1.0, used / covered)


# --- an exit through a SIGTERM handler -----------------------------------------------------

# dora's ladder counts from its own STOP, which leaves the coordinator after dora-doctor's
# request by the CLI's start-up: 0.2-0.5 s here, up to 1.7 s seen on a loaded machine.
STOP_LAG_S = 2.0


def catches_sigterm(
    node: NodeProcess, end: Optional[NodeEnd], start: float, until: Optional[float]
) -> Optional[bool]:
    """Did the process catch SIGTERM at some moment of ``[start, until]``?

    From SigCgt: the answer at discovery, then each change seen while sampling. True when
    any answer in force then says so (an exiting interpreter resets its handlers, so the
    last reading before the exit often says "not caught"); False only when every moment is
    covered by a "not caught"; None when some part was never read.
    """
    states = list(end.sigcgt) if end is not None else []
    if not states and node.catches_sigterm is not None:
        states = [(None, node.catches_sigterm)]
    if not states:
        return None
    stop_at = until if until is not None else float("inf")
    first = states[0][0]
    seen: List[bool] = []
    unread = first is not None and first > start  # nothing says how it was before
    for index, (since, caught) in enumerate(states):
        begins = float("-inf") if since is None else since
        ends = states[index + 1][0] if index + 1 < len(states) else None
        ends_at = float("inf") if ends is None else ends
        if begins <= stop_at and ends_at >= start:
            seen.append(caught)
    if any(seen):
        return True
    return None if unread or not seen else False


def _sigterm_handler_exit(
    verdict: NodeVerdict,
    node: NodeProcess,
    samples: Samples,
    shutdown: Shutdown,
    end: Optional[NodeEnd],
) -> Optional[str]:
    """A "clean" end at dora's SIGTERM point is the SIGTERM's when the process catches it.

    dora ≥ 0.4 SIGTERMs a node at the grace deadline; a Python handler that exits with
    status 0 leaves no failure line, so dora's silence (or its dataflow end) would say
    "clean". A process seen to exit between the grace deadline and dora's SIGKILL point,
    that caught SIGTERM (SigCgt) and never left its event wait on STOP before the deadline,
    was ended by that SIGTERM through its handler: ``terminated``. Where the samples show it
    reacted to STOP, or are too few to tell, or SigCgt was never read, its own clean exit
    and its handler's look the same: ``unknown``, with the reason (returned).
    """
    request = shutdown.request
    if verdict.outcome != Outcome.CLEAN or request is None or shutdown.grace is None:
        return None
    if end is None or end.time is None or end.source != "process":
        return None
    if not has_sigterm_step(shutdown.dora_version):
        return None
    marks = {m.kind: m.time for m in markers(shutdown) if m.kind in (GRACE, KILL)}
    if GRACE not in marks or KILL not in marks:
        return None
    deadline = marks[GRACE]
    if not deadline - DEADLINE_TOLERANCE_S <= end.time <= marks[KILL] + STOP_LAG_S:
        return None
    caught = catches_sigterm(node, end, request.time, end.time)
    if caught is False:
        return None  # no handler: dora's SIGTERM would have left a Signal(15) line
    at = (
        f"it exited {end.time - request.time:.2f} s after the stop, at dora's SIGTERM point "
        f"(grace {shutdown.grace.seconds:g} s), with no failure line from dora"
    )
    main = main_thread_spans(samples.stacks)
    wait_stack = event_wait_stack(main, request.time)
    main_id = next((t.thread_id for t in map(event_thread, samples.stacks) if t), None)
    enough = window_ticks(samples.stacks, (request.time, end.time)) >= MIN_WINDOW_SAMPLES
    reacted: Optional[bool] = None
    if enough and wait_stack is not None:
        moved = reaction_time(main, wait_stack[-1], request.time, end.time)
        waiting = _was_waiting(samples, main_id, EVENT_THREAD, request.time)
        if waiting and moved is not None and moved < deadline - DEADLINE_TOLERANCE_S:
            reacted = True
        else:
            # not leaving the wait is evidence only as far as the samples go: a node seen last
            # well before the deadline may have read STOP after its last sample
            seen_until = max((e for _s, e, stack in main if stack), default=0.0)
            reacted = None if seen_until < deadline - DEADLINE_TOLERANCE_S else False
    if caught is None:
        verdict.outcome = Outcome.UNKNOWN
        return (
            f"{at}; whether it catches SIGTERM was not read (SigCgt), so an exit through a "
            "handler cannot be told from a clean exit"
        )
    verdict.rest(R_SIGCGT)
    if reacted is None:
        verdict.outcome = Outcome.UNKNOWN
        return (
            f"{at}; it catches SIGTERM (SigCgt), but too few samples up to the deadline say "
            "whether it had left its event loop on STOP, so its handler's exit and a clean "
            "exit look the same"
        )
    if reacted:
        verdict.outcome = Outcome.UNKNOWN
        return (
            f"{at}; it left its event loop after STOP but also catches SIGTERM (SigCgt), so "
            "its cleanup ending then and its SIGTERM handler's exit look the same"
        )
    verdict.outcome = Outcome.TERMINATED
    verdict.rests_on = [r for r in verdict.rests_on if r not in (R_DATAFLOW_END, R_DORA_END)]
    verdict.rest(R_EXIT_SEEN, R_SIGCGT, R_SAMPLES)
    verdict.add(
        F_HANDLER_EXIT,
        after_s=end.time - request.time,
        grace=shutdown.grace.seconds,
    )
    return None


# --- blame on the right node -----------------------------------------------------------

# dora stop's failure output (1.1.0): "Node `waiter` failed: exited because of signal SIGTERM.
# This error occurred because node `loader` exited before connecting to dora."
_PEER_NEVER_CONNECTED = re.compile(
    r"Node `(?P<victim>[^`\n]{1,200})` failed:[^\n]*?because node `(?P<peer>[^`\n]{1,200})` "
    r"exited before connecting"
)
# Facts about how the process ended, kept for a victim; the rest were about its own code.
_END_FACTS = {
    F_SAMPLING,
    F_DORA_LINE,
    F_STOP,
    F_SIGTERM_AT_GRACE,
    F_SURVIVED_SIGTERM,
    F_HANDLER_EXIT,
    F_NO_END_LINE,
    F_DAEMON_ORPHAN,
    F_DAEMON_BEFORE,
    F_COORDINATOR_GONE,
}


def peers_never_connected(texts: Iterable[str]) -> Dict[str, List[str]]:
    """victim node → the peers dora says exited before connecting, from dora's own words."""
    found: Dict[str, List[str]] = defaultdict(list)
    for text in texts:
        for match in _PEER_NEVER_CONNECTED.finditer(text[:100_000]):
            if match["peer"] not in found[match["victim"]]:
                found[match["victim"]].append(match["peer"])
    return dict(found)


def blame_peers(verdicts: Dict[str, NodeVerdict], dora_says: Dict[str, List[str]]) -> None:
    """dora starts a dataflow only when every node has registered (called ``Node()``): while
    one node is still starting, every other node can only be waiting inside ``Node()`` (or be
    starting itself). Such a node is a victim: the cause is its peer's, and no code advice is
    given for it. Named from dora's own failure message where it gave one, else from the
    peers seen starting."""
    starting = sorted(n for n, v in verdicts.items() if v.cause == Cause.STARTING)
    for node_id, verdict in verdicts.items():
        if verdict.cause in (Cause.STARTING, None) or verdict.outcome in (
            Outcome.CLEAN,
            Outcome.FAILED,
        ):
            continue
        named = [p for p in dora_says.get(node_id, []) if p != node_id]
        peers = named or [p for p in starting if p != node_id]
        if not peers:
            continue
        verdict.cause = Cause.WAITING_FOR_PEER
        verdict.holder = None
        verdict.facts = [f for f in verdict.facts if f.kind in _END_FACTS]
        verdict.add(F_VICTIM, peers=peers, by="dora" if named else "starting")
        verdict.rest(R_DORA_PEER if named else R_PEER_STARTING)


# --- dora's own processes ---------------------------------------------------------------


def dora_gone(
    verdict: NodeVerdict, recording: Recording, shutdown: Shutdown, node: NodeProcess
) -> None:
    """What the death of dora's daemon or coordinator, seen by the stop watch, means for a
    node: a daemon's death ends its nodes (or orphans them) without any stop, and its
    silence afterwards says nothing about how they ended."""
    # a daemon's death is about its own machine's nodes (a merged recording has several)
    daemon = _first(recording, logevents.DAEMON_GONE, node.machine)
    coordinator = _first(recording, logevents.COORDINATOR_GONE)
    end = shutdown.end_of(node.id)
    if daemon is not None:
        if end is None or end.time is None:
            if verdict.outcome == Outcome.RUNNING:
                verdict.add(F_DAEMON_ORPHAN, pid=node.pid)
        elif end.time >= daemon - DORA_GONE_TOLERANCE_S:
            verdict.add(F_DAEMON_BEFORE, seconds=max(0.0, end.time - daemon))
            if verdict.outcome == Outcome.CLEAN and not (end.finished or end.status_seen):
                # "no line from the daemon" meant nothing; its exit status still does
                verdict.outcome = Outcome.UNKNOWN
    if coordinator is not None and (
        shutdown.request is None or shutdown.request.time > coordinator
    ):
        verdict.add(F_COORDINATOR_GONE)


def _first(recording: Recording, kind: str, machine: Optional[str] = None) -> Optional[float]:
    times = [
        e.time
        for e in recording.logs
        if e.kind == kind
        and e.time is not None
        and (e.machine is None or machine is None or e.machine == machine)
    ]
    return min(times) if times else None


# --- helpers -------------------------------------------------------------------------------


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
