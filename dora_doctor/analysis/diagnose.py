"""Turn a recording into findings: per node, how it ended, why, and what to change.

Pure functions over :class:`~dora_doctor.recording.jsonl.Recording`; nothing here talks to a
process, so every result can be reproduced from the file alone.

The shutdown diagnosis compares the thread that reads dora's events (MainThread) before and
after the stop request. Before the stop it spends its time in one place, the event wait
(``for event in node`` / ``node.next()``); if it never leaves that place after the stop, it
never saw STOP, and the GIL counts say whether another thread kept it from running
(``gil-contention``) or it was waiting on something else (``stuck``). If it left, it reacted,
and whatever it was doing when dora ended it is a ``slow-shutdown``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from dora_doctor.analysis import grace as grace_mod
from dora_doctor.analysis import redaction
from dora_doctor.analysis.findings import (
    Advice,
    DataflowFinding,
    Diagnosis,
    GilFinding,
    Holder,
    NodeFinding,
    Suggestion,
)
from dora_doctor.analysis.timeline import (
    DEADLINE_TOLERANCE_S,
    EVENT_THREAD,
    RUNNING_SHARE,
    NodeEnd,
    Shutdown,
    build_shutdown,
    busy_share,
    event_thread,
    main_thread_spans,
)
from dora_doctor.dora.versions import has_sigterm_step, release_line, sigterm_counts_clean
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
from dora_doctor.recording.jsonl import Recording

# A holder whose innermost Python frame did not move for this long while it held the GIL
# was inside one C call: Python code moves from line to line far faster than this.
NATIVE_MIN_STILL_S = 0.25
MAX_HOLDERS = 5
# Fewer samples than this in the shutdown window say nothing reliable.
MIN_WINDOW_SAMPLES = 5
# Another thread holding the GIL this much of the time is what kept MainThread from running.
CONTENTION_SHARE = 0.5
# A reaction this late after the stop is worth reporting even when the node stopped in time.
NOTABLE_DELAY_S = 0.5
BASELINE_S = 10.0

# A thread can hold the GIL with no Python frame at all: in native code called from C, or
# while the interpreter finalises after the last line of the script ran.
NO_PYTHON_FRAME = Frame("(no Python frame: native code or interpreter exit)", "", 0)

Window = Tuple[float, float]
SpanTuple = Tuple[float, float, Stack]


@dataclass(frozen=True)
class HolderKey:
    thread_id: int
    thread: str
    leaf: Frame


def report_from_recording(
    recording: Recording, margin: float = 1.5, show_locals: bool = False
) -> Diagnosis:
    report = Diagnosis(dora_version=recording.dora_version)
    report.recording = str(recording.path) if recording.path else None
    for dataflow in recording.dataflows:
        shutdown = build_shutdown(recording, dataflow)
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
                machine=node.machine,
                skipped=node.skip_reason,
            )
            for event in recording.events:
                if event.dataflow == dataflow.uuid and event.node == node.id:
                    if event.kind == "sampler-error":
                        node_finding.skipped = event.detail
                    elif event.kind == "sampler-degraded" and event.detail:
                        node_finding.evidence.append(f"Sampling: {event.detail}.")
            cpu = [c for c in recording.cpu if c.dataflow == dataflow.uuid and c.node == node.id]
            fill_sampling(node_finding, stacks, gil)
            diagnose_shutdown(node_finding, node, stacks, gil, shutdown, cpu)
            _dora_gone(node_finding, recording, shutdown)
            node_finding.locals = redaction.node_values(
                recording, dataflow.uuid, node.id, show_locals
            )
            finding.nodes.append(node_finding)
        if shutdown.request is not None:
            finding.suggestion = suggestion_from_findings(
                finding,
                dataflow.label,
                margin,
                shutdown.grace.seconds if shutdown.grace else None,
                shutdown.dora_version,
            )
        report.dataflows.append(finding)
    return report


def _dora_gone(finding: NodeFinding, recording: Recording, shutdown: Shutdown) -> None:
    """What the death of dora's daemon or coordinator, seen by the stop watch, means for a
    node: a daemon's death ends its nodes (or orphans them) without any stop, and its
    silence afterwards says nothing about how they ended."""
    # a daemon's death is about its own machine's nodes (a merged recording has several)
    daemon = _first(recording, logevents.DAEMON_GONE, finding.machine)
    coordinator = _first(recording, logevents.COORDINATOR_GONE)
    end = shutdown.end_of(finding.id)
    if daemon is not None:
        if end is None or end.time is None:
            if finding.outcome == "running":
                finding.evidence.append(
                    "dora's daemon exited while this node ran, and the node was still running "
                    "when the watch ended: an orphan dora no longer stops or reaps"
                    + (f" (end it yourself: process {finding.pid})." if finding.pid else ".")
                )
        elif end.time >= daemon - DORA_GONE_TOLERANCE_S:
            finding.evidence.append(
                f"dora's daemon exited {max(0.0, end.time - daemon):.2f} s before this node "
                "ended: the node lost its daemon; that was not a stop."
            )
            if finding.outcome == "clean" and not end.finished:
                finding.outcome = "unknown"  # "no line from the daemon" meant nothing then
    if coordinator is not None and (
        shutdown.request is None or shutdown.request.time > coordinator
    ):
        finding.evidence.append(
            "dora's coordinator exited during the watch: a stop request after that could not "
            "be seen, so this node's end comes from its process exit alone."
        )


# The stop watch polls node and dora processes in one loop: a node that ended because its
# daemon died can be seen a poll before the daemon's own end.
DORA_GONE_TOLERANCE_S = 0.1


def _first(recording: Recording, kind: str, machine: Optional[str] = None) -> Optional[float]:
    times = [
        e.time
        for e in recording.logs
        if e.kind == kind
        and e.time is not None
        and (e.machine is None or machine is None or e.machine == machine)
    ]
    return min(times) if times else None


# --- sampling figures -------------------------------------------------------------------


def fill_sampling(
    finding: NodeFinding,
    stacks: List[StackSegment],
    gil: List[GilSegment],
    window: Optional[Window] = None,
) -> None:
    """Sample count, rate, GIL share and holders of one node over ``window`` (or all)."""
    ticks = window_ticks(stacks, window)
    # the whole time sampled, gaps between py-spy segments included: an honest rate
    covered = (
        _overlap(min(s.start for s in stacks), max(s.end for s in stacks), window)
        if stacks
        else 0.0
    )
    finding.samples = int(round(ticks))
    finding.sample_rate_hz = round(ticks / covered, 1) if covered > 0 else None
    finding.gil = gil_finding(stacks, gil, window, ticks, finding.sample_rate_hz)
    finding.top_frame = top_frame(stacks, gil)


def window_ticks(stacks: Iterable[StackSegment], window: Optional[Window]) -> float:
    return sum(_share_of(s.start, s.end, window) * s.ticks for s in stacks)


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
        if round(count / ticks, 3) > 0
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
        main = event_thread(stacks[-1])
        if main is not None and main.spans and main.spans[-1].stack:
            leaf = main.spans[-1].stack[-1]
            return f"{main.name}: {leaf.function} ({leaf.where()})"
    return None


# --- the shutdown ---------------------------------------------------------------------------


def outcome_of(end: Optional[NodeEnd], shutdown: Shutdown) -> Tuple[Optional[str], Optional[float]]:
    """(outcome, stop→exit seconds) from how the process ended relative to the stop."""
    request = shutdown.request
    if end is None:
        return "unknown", None
    # [versions] timeline found no evidence of how it ended (e.g. 0.4.x logs no exit)
    if end.unknown_reason and end.signal is None and end.grace_kill is None:
        return "unknown", _duration(end, shutdown)
    duration = None
    if request is not None and end.time is not None and end.time >= request.time:
        duration = round(end.time - request.time, 3)
    if end.coarse:
        duration = None  # whole seconds only: see the evidence for the range
    if end.grace_kill is not None or end.signal == 9:
        return "killed", duration
    if end.signal == 15:
        return "terminated", duration
    if end.signal is not None:
        return "failed", duration
    if end.exit_code not in (None, 0):
        return "failed", duration
    if end.finished:
        return "clean", duration
    if end.time is None:
        if end.node.skip_reason and end.node.skip_reason.startswith(REMOTE):
            return "unknown", None  # its own daemon's log, silent on a clean exit, is elsewhere
        if shutdown.daemon_log_read and shutdown.ended:
            return "clean", None  # a clean exit is the one end dora's daemon does not log
        return ("running" if end.running_at_end else "unknown"), None
    if shutdown.daemon_log_read:
        return "clean", duration
    return "unknown", duration


def _duration(end: NodeEnd, shutdown: Shutdown) -> Optional[float]:
    """[versions] stop→exit seconds, when both are exact."""
    request = shutdown.request
    if request is None or end.time is None or end.coarse or end.time < request.time:
        return None
    return round(end.time - request.time, 3)


def diagnose_shutdown(
    finding: NodeFinding,
    node: NodeProcess,
    stacks: List[StackSegment],
    gil: List[GilSegment],
    shutdown: Shutdown,
    cpu: Sequence[CpuSegment] = (),
) -> None:
    end = shutdown.end_of(node.id)
    finding.outcome, finding.stop_duration_s = outcome_of(end, shutdown)
    request = shutdown.request
    if end is not None:
        finding.evidence.extend(end.evidence)
    if request is None:
        if finding.outcome in ("running", "unknown"):
            finding.outcome = "running" if finding.outcome == "running" else None
        return
    finding.evidence.insert(0, _stop_sentence(shutdown, finding))
    if finding.outcome == "terminated" and sigterm_counts_clean(shutdown.dora_version):
        finding.evidence.append(
            "Ended by SIGTERM at the grace deadline: dora ≥ 0.4 reports this as a clean stop "
            "('treating as clean'), but the node's own cleanup never ran."
        )
    elif finding.outcome == "terminated" and has_sigterm_step(shutdown.dora_version):
        # [versions] 0.4.x/0.5.x report the SIGTERM as a failure, not as clean; a JSON log
        # of no known line ("≥0.4") may be either
        version = shutdown.dora_version or ""
        said = (
            f" (dora {release_line(version).series} reports it as a failure)"
            if not version.startswith("≥")
            else ""
        )
        finding.evidence.append(
            f"Ended by SIGTERM at the grace deadline{said}; the node's own cleanup never ran."
        )
    if finding.outcome == "killed" and has_sigterm_step(shutdown.dora_version):
        _survived_sigterm(finding, shutdown)
    if not node.python or finding.skipped:
        return
    window_end = (end.time if end and end.time else None) or shutdown.recording_end
    if window_end is None or window_end <= request.time:
        finding.cause = "none" if finding.outcome == "clean" else "unknown"
        if finding.cause == "unknown":
            finding.evidence.append("The node ended before the stop request: nothing to diagnose.")
        return
    window = (request.time, window_end)
    ticks = window_ticks(stacks, window)
    rate = finding.sample_rate_hz
    finding.gil = gil_finding(stacks, gil, window, ticks, rate)
    if ticks < MIN_WINDOW_SAMPLES:
        if finding.outcome == "clean":  # it stopped faster than samples come: nothing to fix
            finding.cause = "none"
            return
        finding.cause = "unknown"
        finding.evidence.append(
            f"Only {ticks:.0f} samples between the stop request and the end "
            f"({window_end - request.time:.2f} s): too few to say what the node was doing."
        )
        return
    _classify(finding, stacks, gil, shutdown, window, ticks, cpu)
    if finding.outcome in ("terminated", "killed") and end is not None and end.time:
        _holders_at_the_end(finding, stacks, gil, end.time)


def _classify(
    finding: NodeFinding,
    stacks: List[StackSegment],
    gil: List[GilSegment],
    shutdown: Shutdown,
    window: Window,
    ticks: float,
    cpu: Sequence[CpuSegment] = (),
) -> None:
    request = shutdown.request
    assert request is not None
    main = main_thread_spans(stacks)
    main_name = EVENT_THREAD
    wait_stack = event_wait_stack(main, request.time)
    wait_leaf = wait_stack[-1] if wait_stack else None
    deadline = request.time + shutdown.grace.seconds if shutdown.grace else None
    reaction = reaction_time(main, wait_leaf, request.time, window[1])
    late = (
        reaction is not None
        and deadline is not None
        and reaction >= deadline - DEADLINE_TOLERANCE_S
    )
    reacted = reaction is not None and not late
    others = [h for h in finding.gil.holders if h.thread != main_name]
    other_share = sum(h.share for h in others)
    ended_by_dora = finding.outcome in ("terminated", "killed", "running", "unknown")

    if finding.outcome == "failed":
        finding.cause = "unknown"
        finding.evidence.append("It exited with an error of its own, not because of the stop.")
        return
    if not ended_by_dora:  # clean
        before = (request.time, reaction) if reaction is not None else window
        share_before = _other_share(stacks, gil, before, main_name)
        delay = (reaction - request.time) if reaction is not None else 0.0
        if delay >= NOTABLE_DELAY_S and share_before >= CONTENTION_SHARE:
            _gil_contention(
                finding, others, delay, share_before, main_name, wait_stack, stopped_in_time=True
            )
        else:
            finding.cause = "none"
        return
    if not reacted:
        if other_share >= CONTENTION_SHARE:
            _gil_contention(
                finding, others, window[1] - window[0], other_share, main_name, wait_stack
            )
        else:
            _stuck(finding, wait_stack, window, main_name)
        if late and reaction is not None:
            _late_handler(finding, main, reaction, window[1], main_name)
        return
    assert reaction is not None
    after = (reaction, window[1])
    share_after = _other_share(stacks, gil, after, main_name)
    if share_after >= CONTENTION_SHARE:
        others_after = [
            h
            for h in gil_finding(stacks, gil, after, window_ticks(stacks, after)).holders
            if h.thread != main_name
        ]
        _gil_contention(
            finding,
            others_after,
            after[1] - after[0],
            share_after,
            main_name,
            wait_stack,
            reacted_at=reaction - request.time,
        )
        return
    exit_wait = _waiting_at_exit(main, after)
    if exit_wait is not None:
        finding.cause = "stuck"
        finding.evidence.append(
            f"{main_name} left the event loop {reaction - request.time:.2f} s after the stop "
            "but then "
            f"waited in {exit_wait.function} ({exit_wait.where()}) until the end: "
            "a non-daemon thread's join or a lock that is never released."
        )
        finding.advice.append(
            Advice(
                "code",
                "Mark worker threads daemon=True, or tell them to stop and join them with a "
                "timeout before returning.",
                exit_wait.where(),
            )
        )
        finding.advice.append(Advice("grace", "No grace period helps: the wait does not end."))
        return
    _slow_shutdown(finding, stacks, gil, main, main_name, reaction, request.time, after, cpu)


def _survived_sigterm(finding: NodeFinding, shutdown: Shutdown) -> None:
    """dora ≥ 0.4 sends SIGTERM at the grace deadline: a node it had to SIGKILL outlived it."""
    grace = shutdown.grace.seconds if shutdown.grace else None
    lived = (
        f" {finding.stop_duration_s - grace:.2f} s"
        if grace is not None and finding.stop_duration_s is not None
        else ""
    )
    finding.evidence.append(
        f"It outlived dora's SIGTERM at the grace deadline by{lived} until the SIGKILL: Python "
        "caught SIGTERM (a signal.signal handler) and did not exit, or the handler could not "
        "even run because the thread that runs handlers was blocked in C (a lock, a wait)."
    )
    finding.advice.append(
        Advice(
            "code",
            "Let SIGTERM end the process: remove the SIGTERM handler, or make it exit "
            "(sys.exit / os._exit) at once; a handler only runs when MainThread runs Python.",
        )
    )


def _holders_at_the_end(
    finding: NodeFinding, stacks: List[StackSegment], gil: List[GilSegment], ended: float
) -> None:
    """Who held the GIL when dora ended the node: what a post-mortem asks first."""
    last = (ended - 1.0, ended)
    ticks = window_ticks(stacks, last)
    if ticks < MIN_WINDOW_SAMPLES:
        return
    found = gil_finding(stacks, gil, last, ticks)
    if not found.holders:
        finding.evidence.append("In its last second no thread held the GIL.")
        return
    top = found.holders[0]
    finding.evidence.append(
        f"In its last second before dora ended it, {top.thread} held the GIL "
        f"{top.share:.0%} of the time, in {top.function} ({top.file}:{top.line})."
    )


def _stop_sentence(shutdown: Shutdown, finding: NodeFinding) -> str:
    request = shutdown.request
    assert request is not None
    source = {
        "dora-doctor": "asked by dora-doctor",
        "coordinator": "coordinator log",
        "daemon": "daemon log",
    }.get(request.source, "dora's output")
    grace = (
        f"grace {shutdown.grace.seconds:g} s ({shutdown.grace.source})"
        if shutdown.grace
        else "grace unknown"
    )
    when = (
        time.strftime("%H:%M:%S", time.localtime(request.time))
        + f".{int(request.time % 1 * 1000):03d}"
    )
    ending = {
        "clean": "exited on its own",
        "terminated": "was terminated (SIGTERM)",
        "killed": "was killed (SIGKILL)",
        "failed": "exited with an error",
        "running": "was still running when the watch ended",
        "unknown": "ended, how is unknown",
    }.get(finding.outcome or "unknown", "")
    end = shutdown.end_of(finding.id)
    if finding.stop_duration_s is not None:
        after = f" {finding.stop_duration_s:.2f} s later"
    elif end is not None and end.time is not None and end.coarse:
        low, high = max(0.0, end.time - request.time), end.time + 1.0 - request.time
        after = (
            f" between {low:.1f} and {high:.1f} s later (dora's output gives whole seconds)"
            if high > 0
            else " before the stop request"
        )
    elif end is not None and end.time is not None and end.time < request.time:
        after = " before the stop request"
    else:
        after = ""
    return f"STOP requested at {when} ({source}); {grace}; the node {ending}{after}."


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


def _describe_wait(stack: Optional[Stack]) -> str:
    if not stack:
        return ""
    leaf, own = stack[-1], user_frame(stack)
    text = f" in {leaf.function} ({leaf.where()})"
    if own != leaf:
        text += f", called from {own.function} ({own.where()}),"
    return text


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


def _other_share(
    stacks: List[StackSegment], gil: List[GilSegment], window: Window, main_name: str
) -> float:
    ticks = window_ticks(stacks, window)
    if ticks <= 0:
        return 0.0
    found = gil_finding(stacks, gil, window, ticks)
    return sum(h.share for h in found.holders if h.thread != main_name)


def _time_by_place(main: Sequence[SpanTuple], window: Window) -> Dict[Frame, float]:
    """Time the event thread spent per place in ``window``, by its innermost own frame."""
    time_at: Dict[Frame, float] = defaultdict(float)
    for start, end, stack in main:
        overlap = min(end, window[1]) - max(start, window[0])
        if overlap > 0 and stack:
            time_at[user_frame(stack)] += overlap
    return time_at


def _most(places: Dict[Frame, float]) -> Frame:
    return max(places, key=lambda f: places[f])


def user_frame(stack: Stack) -> Frame:
    """The innermost frame of the node's own code: library frames say less about what to fix."""
    for frame in reversed(stack):
        if not is_library(frame.file):
            return frame
    return stack[-1]


def is_library(path: str) -> bool:
    return "/lib/python" in path or "site-packages" in path or path.startswith("<")


def _gil_contention(
    finding: NodeFinding,
    others: List[Holder],
    seconds: float,
    share: float,
    main_name: str,
    wait_stack: Optional[Stack],
    stopped_in_time: bool = False,
    reacted_at: Optional[float] = None,
) -> None:
    finding.cause = "gil-contention"
    top = others[0] if others else None
    where = f"{top.file}:{top.line}" if top else None
    if reacted_at is None:
        waiting = _describe_wait(wait_stack)
        finding.evidence.append(
            f"{main_name} stayed{waiting} for {seconds:.2f} s after the stop request"
            + (" before it could read STOP" if stopped_in_time else " and never read STOP")
            + f", while other threads held the GIL {share:.0%} of the time."
        )
    else:
        finding.evidence.append(
            f"{main_name} reacted {reacted_at:.2f} s after the stop, but other threads held the "
            f"GIL {share:.0%} of the remaining {seconds:.2f} s, so its cleanup could hardly run."
        )
    if top is not None:
        how = "inside one C call that never released it" if top.native else "running Python code"
        finding.evidence.append(
            f"Thread {top.thread} held the GIL in {top.share:.0%} of the samples, in "
            f"{top.function} ({where}), {how}."
        )
        if top.native:
            text = (
                f"{top.function} holds the GIL for the whole of one long C call: split the work "
                "into shorter calls, use a library call that releases the GIL, or run it in a "
                "separate process (multiprocessing / ProcessPoolExecutor)."
            )
        else:
            text = (
                f"The loop in {top.function} keeps the GIL busy: check a stop flag in it "
                "(set it when STOP arrives), or move the work to a separate process."
            )
        finding.advice.append(Advice("code", text, where))
    finding.advice.append(
        Advice(
            "grace",
            "A longer grace period only hides this: STOP is read whenever the holder happens "
            "to let go of the GIL, which no grace value bounds.",
        )
    )


def _stuck(
    finding: NodeFinding,
    wait_stack: Optional[Stack],
    window: Window,
    main_name: str,
) -> None:
    finding.cause = "stuck"
    if not wait_stack:
        finding.evidence.append(f"No samples of {main_name} after the stop request.")
        return
    finding.evidence.append(
        f"{main_name} stayed{_describe_wait(wait_stack)} from before the stop request until "
        f"the end, {window[1] - window[0]:.2f} s, and no other thread held the GIL long enough "
        "to explain it: it never read STOP."
    )
    finding.advice.append(
        Advice(
            "code",
            "Read events in the main loop and leave it on STOP "
            "(`for event in node: if event['type'] == 'STOP': break`), instead of waiting here.",
            user_frame(wait_stack).where(),
        )
    )
    finding.advice.append(Advice("grace", "No grace period helps: the node never reacts to STOP."))


def _late_handler(
    finding: NodeFinding, main: Sequence[SpanTuple], start: float, end: float, main_name: str
) -> None:
    places = _time_by_place(main, (start, end))
    if not places:
        return
    frame = _most(places)
    finding.evidence.append(
        f"At the grace deadline (SIGTERM) {main_name} moved to {frame.function} ({frame.where()}) "
        f"and was still there {end - start:.2f} s later: a SIGTERM handler that delays the exit."
    )
    finding.advice.append(
        Advice(
            "code",
            "Keep the SIGTERM handler short: set a flag or exit, no slow work.",
            frame.where(),
        )
    )


def _slow_shutdown(
    finding: NodeFinding,
    stacks: List[StackSegment],
    gil: List[GilSegment],
    main: Sequence[SpanTuple],
    main_name: str,
    reaction: float,
    stop: float,
    after: Window,
    cpu: Sequence[CpuSegment] = (),
) -> None:
    finding.cause = "slow-shutdown"
    places = _time_by_place(main, after)
    frame = _most(places) if places else None
    own = gil_finding(stacks, gil, after, window_ticks(stacks, after))
    own_share = sum(h.share for h in own.holders if h.thread == main_name)
    main_id = next((t.thread_id for t in map(event_thread, stacks) if t is not None), None)
    on_cpu = cpu_share(cpu, main_id, after) if main_id is not None else None
    if own_share >= CONTENTION_SHARE:
        kind = f"computing in Python (it held the GIL {own_share:.0%} of the time)"
    elif on_cpu is not None and on_cpu - own_share >= RUNNING_SHARE:
        kind = (
            f"running native code without the GIL (busy {on_cpu:.0%} of the time, "
            f"GIL held {own_share:.0%})"
        )
    else:
        busy = f", busy {on_cpu:.0%}" if on_cpu is not None else ""
        kind = f"waiting without the GIL (sleep, I/O; GIL held {own_share:.0%} of the time{busy})"
    where = f" in {frame.function} ({frame.where()})" if frame else ""
    finding.evidence.append(
        f"{main_name} reacted {reaction - stop:.2f} s after the stop request and spent the "
        f"remaining {after[1] - after[0]:.2f} s{where}, {kind}, until it was ended."
    )
    finding.advice.append(
        Advice(
            "grace",
            "A longer grace period lets this cleanup finish: measure how long it needs with "
            "`dora-doctor tune-grace`.",
        )
    )
    if frame is not None:
        finding.advice.append(
            Advice(
                "code",
                f"Or make {frame.function} faster, or bound it (a deadline, less work at stop).",
                frame.where(),
            )
        )


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


def _waiting_at_exit(main: Sequence[SpanTuple], window: Window) -> Optional[Frame]:
    """The interpreter's exit waiting for non-daemon threads (``threading._shutdown``)."""
    for start, end, stack in main:
        if end <= window[0] or start >= window[1] or not stack:
            continue
        if (
            any(f.function in ("_shutdown", "threading._shutdown") for f in stack)
            and window[1] - max(start, window[0]) > 0.5
        ):
            return stack[-1]
    return None


def suggestion_from_findings(
    finding: DataflowFinding,
    name: str,
    margin: float,
    current_grace_s: Optional[float],
    dora_version: Optional[str] = None,
) -> Suggestion:
    """inspect's single observation: a clean stop measures the need, an ended one bounds it."""
    times: Dict[str, List[grace_mod.StopTime]] = {}
    for node in finding.nodes:
        if node.stop_duration_s is None:
            continue
        censored = node.outcome in ("terminated", "killed", "running")
        times[node.id] = [grace_mod.StopTime(node.stop_duration_s, censored, node.cause)]
    return grace_mod.suggest(
        grace_mod.stats_by_node(times), name, margin, current_grace_s, dora_version
    )


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
