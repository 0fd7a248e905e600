"""Say a verdict in words: the evidence sentences and the advice a user reads.

Every sentence comes from one fact of a :class:`~dora_doctor.analysis.verdict.NodeVerdict`
and says nothing the fact does not carry, so a claim ("inside one C call", "a SIGTERM
handler") appears only where the decision made it, worded the same way every time.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from dora_doctor.analysis import verdict as v
from dora_doctor.analysis.findings import Advice, Holder, Outcome
from dora_doctor.analysis.timeline import FINISH_DRAIN_SOURCE as FINISH_DRAIN
from dora_doctor.model import Frame, Stack

_SOURCES = {
    "dora-doctor": "asked by dora-doctor",
    "coordinator": "coordinator log",
    "daemon": "daemon log",
    FINISH_DRAIN: (
        "by dora's finish drain: the dataflow had finished except this node, and its finish "
        "grace ran out (daemon log)"
    ),
}
_ENDINGS = {
    Outcome.CLEAN: "exited on its own",
    Outcome.TERMINATED: "was terminated (SIGTERM)",
    Outcome.KILLED: "was killed (SIGKILL)",
    Outcome.FAILED: "exited with an error",
    Outcome.RUNNING: "was still running when the watch ended",
    Outcome.UNKNOWN: "ended (how is unknown)",
}
NO_GRACE_HELPS = "No grace period helps: the node never reacts to STOP."
MEASURE = (
    "A longer grace period lets this cleanup finish: measure how long it needs with "
    "`dora-doctor tune-grace`."
)
# A finish drain's grace is not dora stop's: tune-grace rehearses `dora stop`, which sets neither
FINISH_GRACE = (
    "A longer finish grace lets this cleanup finish: `finish_grace_secs` on this node in the "
    "dataflow YAML (else DORA_FINISH_DRAIN_GRACE_SECS for the daemon); `dora stop "
    "--grace-duration` does not apply to a dataflow that finishes on its own."
)
GRACE_HIDES = (
    "A longer grace period only hides this: STOP is read whenever the holder happens "
    "to let go of the GIL, which no grace value bounds."
)


def evidence(verdict: v.NodeVerdict) -> List[str]:
    """One sentence per fact, in the order the decision met them."""
    return [s for fact in verdict.facts for s in [_SAY[fact.kind](fact.data)] if s]


def _by_finish_drain(verdict: v.NodeVerdict) -> bool:
    """Was the stop dora's finish drain (the dataflow ended on its own), not a request?"""
    return any(f.kind == v.F_STOP and f.data["source"] == FINISH_DRAIN for f in verdict.facts)


def advice(verdict: v.NodeVerdict) -> List[Advice]:
    """What to change, aimed at the user's own line wherever a line is known."""
    out: List[Advice] = []
    has_holder = verdict.has(v.F_HOLDER)
    for fact in verdict.facts:
        d = fact.data
        if fact.kind == v.F_SURVIVED_SIGTERM:
            out.extend(_survived_advice(d["catches_sigterm"]))
        elif fact.kind == v.F_HOLDER:
            out.append(_holder_advice(d["holder"]))
            out.append(Advice("grace", GRACE_HIDES))
        elif fact.kind in (v.F_WAITED, v.F_REACTED_CONTENDED) and not has_holder:
            out.append(Advice("grace", GRACE_HIDES))
        elif fact.kind == v.F_STUCK:
            out.append(
                Advice(
                    "code",
                    "Read events in the main loop and leave it on STOP "
                    "(`for event in node: if event['type'] == 'STOP': break`), instead of "
                    "waiting here.",
                    v.user_frame(d["wait"]).where(),
                )
            )
            out.append(Advice("grace", NO_GRACE_HELPS))
        elif fact.kind == v.F_BUSY:
            text = (
                f"Return from {_operator_name(verdict)}on_event between pieces of this work "
                "(or run it in a worker thread or process): dora's runtime hands an operator "
                "STOP only between on_event calls."
                if verdict.has(v.F_OPERATOR)
                else "Return to the event loop between pieces of this work (or run it in a "
                "worker thread or process) and leave the loop on STOP."
            )
            out.append(Advice("code", text, d["frame"].where()))
            out.append(Advice("grace", NO_GRACE_HELPS))
        elif fact.kind == v.F_EXIT_WAIT:
            out.extend(_exit_wait_advice(d["frame"], d["threads"], d.get("pool", [])))
        elif fact.kind == v.F_AT_SIGTERM and d["catches_sigterm"]:
            out.append(
                Advice(
                    "code",
                    "Keep the SIGTERM handler short: set a flag or exit, no slow work.",
                    d["frame"].where(),
                )
            )
        elif fact.kind == v.F_SLOW:
            out.append(Advice("grace", FINISH_GRACE if _by_finish_drain(verdict) else MEASURE))
            frame = d["frame"]
            if frame is not None:
                out.append(
                    Advice(
                        "code",
                        f"Or make {frame.function} faster, or bound it (a deadline, less work "
                        "at stop).",
                        frame.where(),
                    )
                )
        elif fact.kind == v.F_STARTING:
            out.extend(_starting_advice(d["startup_timeout"]))
        elif fact.kind == v.F_STARTUP_KILL:
            out.append(_startup_kill_advice(d))
        elif fact.kind == v.F_HEALTH_KILL:
            out.append(_health_kill_advice(d))
    return out


# --- one sentence per fact ------------------------------------------------------------------


def _stop(d: Dict[str, Any]) -> str:
    source = _SOURCES.get(d["source"], "dora's output")
    grace = f"grace {d['grace']:g} s ({d['grace_source']})" if d["grace"] else "grace unknown"
    at = d["time"]
    when = time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 1000):03d}"
    ending = _ENDINGS.get(d["outcome"] or Outcome.UNKNOWN, "")
    if d["duration"] is not None:
        after = f" {d['duration']:.2f} s later"
    elif d["low"] is not None:
        low, high = d["low"], d["high"]
        after = (
            f" between {low:.1f} and {high:.1f} s later (dora's output gives whole seconds)"
            if high > 0
            else " before the stop request"
        )
    elif d["before"]:
        after = " before the stop request"
    else:
        after = ""
    return f"STOP requested at {when} ({source}); {grace}; the node {ending}{after}."


def _survived(d: Dict[str, Any]) -> str:
    lived = f" {d['lived']:.2f} s" if d["lived"] is not None else ""
    head = f"It outlived dora's SIGTERM at the grace deadline by{lived} until the SIGKILL: "
    if d["catches_sigterm"] is True:
        return head + (
            "it catches SIGTERM (SigCgt in /proc/PID/status), and its handler did not end the "
            "process, or could not even run because the thread that runs handlers was "
            "blocked in C (a lock, a wait)."
        )
    if d["catches_sigterm"] is False:
        return head + (
            "it did not catch SIGTERM when dora-doctor found it (SigCgt in /proc/PID/status), "
            "so a handler installed later, or SIGTERM blocked or ignored, kept it alive."
        )
    return head + (
        "Python caught SIGTERM (a signal.signal handler) and did not exit, or the signal "
        "was blocked; whether the process catches SIGTERM was not read (SigCgt)."
    )


def _survived_advice(catches: Optional[bool]) -> List[Advice]:
    if catches is True:
        return [
            Advice(
                "code",
                "Let SIGTERM end the process: remove the SIGTERM handler, or make it exit "
                "(sys.exit / os._exit) at once; a handler only runs when MainThread runs "
                "Python.",
            )
        ]
    return []


def _operator_name(verdict: v.NodeVerdict) -> str:
    """``operator `hog`'s `` when the verdict knows the operator's id, else nothing."""
    for fact in verdict.facts:
        if fact.kind == v.F_OPERATOR and fact.data.get("operator"):
            return f"operator `{fact.data['operator']}`'s "
    return ""


def _holder(d: Dict[str, Any]) -> str:
    top: Holder = d["holder"]
    running = f" (running operator `{top.operator}`)" if top.operator else ""
    return (
        f"Thread {top.thread}{running} held the GIL in {top.share:.0%} of the samples, in "
        f"{top.function} ({top.file}:{top.line}){_inside(top)}{_how(top)}."
    )


def _inside(holder: Holder) -> str:
    inside = holder.inside
    if inside is None:
        return ""
    return f", calling {inside.function} ({inside.file}:{inside.line})"


def _how(holder: Holder) -> str:
    if holder.native is True:
        return ", inside one C call that never released it"
    if holder.native is False:
        return ", running Python code"
    return ""


def _holder_advice(top: Holder) -> Advice:
    where = f"{top.file}:{top.line}"
    call = (
        f"{top.inside.function} ({top.inside.file}:{top.inside.line}), called from {top.function},"
        if top.inside is not None
        else top.function
    )
    if top.native is True:
        text = (
            f"{call} holds the GIL for the whole of one long C call: split the work "
            "into shorter calls, use a library call that releases the GIL, or run it in a "
            "separate process (multiprocessing / ProcessPoolExecutor)."
        )
    elif top.native is False:
        loop = (
            f"The loop in {top.function} (through {top.inside.function}, "
            f"{top.inside.file}:{top.inside.line})"
            if top.inside is not None
            else f"The loop in {top.function}"
        )
        text = (
            f"{loop} keeps the GIL busy: check a stop flag in it "
            "(set it when STOP arrives), or move the work to a separate process."
        )
    else:
        text = (
            f"{call} keeps the GIL: do the work in shorter pieces with a stop check between "
            "them, or move it to a separate process."
        )
    return Advice("code", text, where)


def _waited(d: Dict[str, Any]) -> str:
    return (
        f"{d['thread']} stayed{_describe_wait(d['wait'])} for {d['seconds']:.2f} s after the "
        "stop request"
        + (" before it could read STOP" if d["in_time"] else " and never read STOP")
        + f", while other threads held the GIL {d['share']:.0%} of the time."
    )


def _describe_wait(stack: Optional[Stack]) -> str:
    if not stack:
        return ""
    leaf, own = stack[-1], v.user_frame(stack)
    text = f" in {leaf.function} ({leaf.where()})"
    if own != leaf:
        text += f", called from {own.function} ({own.where()}),"
    return text


def _exit_wait(d: Dict[str, Any]) -> str:
    frame: Frame = d["frame"]
    threads: Sequence[Tuple[str, Frame]] = d["threads"]
    head = (
        f"{d['thread']} left the event loop {d['after_s']:.2f} s after the stop but then "
        f"waited in {frame.function} ({frame.where()}) until the end: "
    )
    if not threads:
        return head + "a non-daemon thread's join or a lock that is never released."
    pool: Sequence[str] = d.get("pool", [])
    if pool and all(name in pool for name, _f in threads):
        return head + (
            "the interpreter's exit (concurrent.futures' _python_exit) joins the "
            "ThreadPoolExecutor worker"
            + ("s" if len(threads) > 1 else "")
            + " still running a job: "
            + "; ".join(f"{name} in {f.function} ({f.where()})" for name, f in threads)
            + "."
        )
    return head + (
        "the interpreter's exit joins the non-daemon thread"
        + ("s" if len(threads) > 1 else "")
        + " still running: "
        + "; ".join(f"{name} in {f.function} ({f.where()})" for name, f in threads)
        + "."
    )


def _exit_wait_advice(
    frame: Frame, threads: Sequence[Tuple[str, Frame]], pool: Sequence[str] = ()
) -> List[Advice]:
    workers = [(name, at) for name, at in threads if name in pool]
    others = [(name, at) for name, at in threads if name not in pool]
    out = [_pool_advice(name, at) for name, at in workers]
    if others or not workers:
        out.append(_thread_advice(frame, others))
    return [*out, Advice("grace", "No grace period helps: the wait does not end.")]


def _pool_advice(name: str, at: Frame) -> Advice:
    """A ThreadPoolExecutor's worker is not a daemon and cannot be made one: the exit waits
    for its job to return, so the job itself must notice the stop."""
    return Advice(
        "code",
        f"{at.function} runs in the ThreadPoolExecutor worker {name}, which the interpreter's "
        "exit joins until the job returns (a pool's workers cannot be daemon threads): check "
        f"a stop flag in {at.function} (a threading.Event set on STOP), and on STOP call "
        "executor.shutdown(wait=False, cancel_futures=True) so queued jobs never start.",
        at.where(),
    )


def _thread_advice(frame: Frame, threads: Sequence[Tuple[str, Frame]]) -> Advice:
    if threads:
        name, at = threads[0]
        names = ", ".join(n for n, _f in threads)
        code = Advice(
            "code",
            f"Make {names} stop when the node stops: create "
            + ("them" if len(threads) > 1 else "it")
            + " with daemon=True, or tell "
            + ("them" if len(threads) > 1 else "it")
            + " to stop on STOP (an Event it checks here) and join with a timeout.",
            at.where(),
        )
    else:
        code = Advice(
            "code",
            "Mark worker threads daemon=True, or tell them to stop and join them with a "
            "timeout before returning.",
            frame.where(),
        )
    return code


def _at_sigterm(d: Dict[str, Any]) -> str:
    frame: Frame = d["frame"]
    head = (
        f"At the grace deadline (SIGTERM) {d['thread']} moved to {frame.function} "
        f"({frame.where()}) and was still there {d['seconds']:.2f} s later"
    )
    if d["catches_sigterm"] is True:
        return head + ": a SIGTERM handler that delays the exit."
    if d["catches_sigterm"] is False:
        return head + ", though the process did not catch SIGTERM when dora-doctor found it."
    return head + "; whether the process catches SIGTERM was not read (SigCgt)."


def _slow(d: Dict[str, Any]) -> str:
    own, on_cpu = d["own_share"], d["on_cpu"]
    if d["how"] == "python":
        kind = f"computing in Python (it held the GIL {own:.0%} of the time)"
    elif d["how"] == "native":
        kind = (
            f"running native code without the GIL (busy {on_cpu:.0%} of the time, "
            f"GIL held {own:.0%})"
        )
    else:
        busy = f", busy {on_cpu:.0%}" if on_cpu is not None else ""
        kind = f"waiting without the GIL (sleep, I/O; GIL held {own:.0%} of the time{busy})"
    frame = d["frame"]
    where = f" in {frame.function} ({frame.where()})" if frame else ""
    return (
        f"{d['thread']} reacted {d['after_s']:.2f} s after the stop request and spent the "
        f"remaining {d['seconds']:.2f} s{where}, {kind}, until it was ended."
    )


def _last_second(d: Dict[str, Any]) -> str:
    top: Optional[Holder] = d["holder"]
    if top is None:
        held = d.get("held") or 0.0
        if held > 0:  # samples that held it with no Python frame: the interpreter exiting
            share = f"{held:.0%}" if held >= 0.005 else "under 1%"
            return (
                f"In its last second the GIL was held {share} of the time with no Python "
                "frame on the stack (the interpreter exiting, or C code of its own)."
            )
        return "In its last second no thread held the GIL."
    return (
        f"In its last second before dora ended it, {top.thread} held the GIL "
        f"{top.share:.0%} of the time, in {top.function} ({top.file}:{top.line}){_inside(top)}."
    )


def _starting(d: Dict[str, Any]) -> str:
    frame: Frame = d["frame"]
    since = (
        f", {d['since_spawn']:.1f} s after its process was spawned"
        if d["since_spawn"] is not None
        else ""
    )
    if d.get("daemon"):
        return (
            f"It was still starting when the stop came{since}: MainThread was in "
            f"{frame.function} ({frame.where()}) and had not called Node() yet: its process "
            f"held no connection to its daemon ({d['daemon']}, where Node() connects first) "
            "at any read of /proc up to the stop. STOP cannot reach a node before it connects "
            "to dora, so it could not react to it."
        )
    if d.get("threads") is not None:
        return _starting_before_node(d, frame, since)
    what = f"importing {d['imported']}" if d["imported"] else "importing"
    return (
        f"It was still starting when the stop came{since}: MainThread was {what}, in "
        f"{frame.function} ({frame.where()}), before connecting to dora with Node(). STOP "
        "cannot reach a node before it connects, so it could not react to it."
    )


def _starting_before_node(d: Dict[str, Any], frame: Frame, since: str) -> str:
    """Not an import: the claim rests on the process's threads, so the sentence says so."""
    count = d["threads"]
    named = d.get("named") or []
    if named:
        threads = "its only thread was not" if count == 1 else f"none of its {count} threads was"
        which = ", ".join(f"{name}…" for name in named)
        how = f"{threads} one of those Node() starts ({which}, by name in /proc)"
    else:
        threads = "its only thread was" if count == 1 else f"all its {count} threads were"
        how = f"{threads} Python's, none of the threads dora's node API starts in Node() (/proc)"
    return (
        f"It was still starting when the stop came{since}: MainThread was in "
        f"{frame.function} ({frame.where()}) and had not called Node() yet: {how}. STOP "
        "cannot reach a node before it connects to dora, so it could not react to it."
    )


def _starting_advice(startup_timeout: bool) -> List[Advice]:
    out = [
        Advice(
            "config",
            "Stop the dataflow only after every node has started (reached Node()); a slow "
            "import or model load makes the first seconds of a node deaf to STOP.",
        )
    ]
    if startup_timeout:
        out.append(
            Advice(
                "config",
                "Bound the start-up in the dataflow YAML: `startup_timeout` (and "
                "`health_check_timeout`) make dora end a node that does not connect in time.",
            )
        )
    return out


def _startup_killed(d: Dict[str, Any]) -> str:
    limit = f"its startup_timeout ({d['seconds']:g} s)" if d["seconds"] else "its startup_timeout"
    since = (
        f", {d['since_spawn']:.1f} s after its process was spawned"
        if d["since_spawn"] is not None
        else ""
    )
    frame: Optional[Frame] = d["frame"]
    where = (
        f"; its MainThread was last sampled in {frame.function} ({frame.where()})"
        if frame is not None
        else ""
    )
    return (
        f"dora killed it (SIGKILL) for not connecting within {limit}{since}: it had not "
        f"reached Node(), so it was still starting{where}. No stop was asked."
    )


def _startup_kill_advice(d: Dict[str, Any]) -> Advice:
    frame: Optional[Frame] = d["frame"]
    at = f" (in {frame.function})" if frame is not None else ""
    return Advice(
        "code" if frame is not None else "config",
        f"Find what keeps the node from reaching Node(){at}; if its start-up is only slow, "
        "raise `startup_timeout` in the dataflow YAML.",
        frame.where() if frame is not None else None,
    )


def _health_killed(d: Dict[str, Any]) -> str:
    limit = (
        f"its health_check_timeout ({d['seconds']:g} s)"
        if d["seconds"]
        else "its health_check_timeout"
    )
    frame: Optional[Frame] = d["frame"]
    where = (
        f" Its MainThread was last sampled in {frame.function} ({frame.where()})."
        if frame is not None
        else ""
    )
    return (
        f"dora's health check killed it (SIGKILL) for sending nothing within {limit}; no "
        "stop was asked. dora counts only the messages a node sends as a sign of life, so a "
        f"node that only receives is killed this way even while it works.{where}"
    )


def _health_kill_advice(d: Dict[str, Any]) -> Advice:
    frame: Optional[Frame] = d["frame"]
    at = f" (it was in {frame.function})" if frame is not None else ""
    return Advice(
        "config",
        "A node that only receives needs no `health_check_timeout`, or one longer than its "
        f"longest quiet spell; if it hung{at}, fix that in its code.",
        frame.where() if frame is not None else None,
    )


def _operator(d: Dict[str, Any]) -> str:
    frame: Frame = d["frame"]
    name = frame.file.rsplit("/", 1)[-1]
    if d.get("operator"):
        return (
            f"This process is dora's runtime for Python operators; the time went to operator "
            f"`{d['operator']}` of node `{d['node']}` ({name}), in {frame.function} "
            f"({frame.where()}), not to the runtime's `<module> (<string>:1)`."
        )
    return (
        f"This process is dora's runtime for Python operators; the time went to the operator "
        f"in {name}, {frame.function} ({frame.where()}), not to the runtime's "
        "`<module> (<string>:1)`."
    )


def _orphan(d: Dict[str, Any]) -> str:
    pid = d["pid"]
    return (
        "dora's daemon exited while this node ran, and the node was still running "
        "when the watch ended: an orphan dora no longer stops or reaps"
        + (f" (end it yourself: process {pid})." if pid else ".")
    )


def _victim(d: Dict[str, Any]) -> str:
    peers = ", ".join(f"`{p}`" for p in d["peers"])
    one = len(d["peers"]) == 1
    why = (
        "dora says " + ("it" if one else "they") + " exited before connecting"
        if d["by"] == "dora"
        else ("it was" if one else "they were") + " still starting"
    )
    return (
        f"It waited inside Node() for {peers}: dora starts a dataflow only when every node "
        f"has registered, and {why}. The cause is the peer's; this node's code is not "
        "at fault."
    )


def _terminated_at_grace(d: Dict[str, Any]) -> str:
    """1.x calls a SIGTERM at the grace a clean stop; 0.4.x and 0.5.x call it a failure."""
    if d.get("counts_clean", True):
        return (
            "Ended by SIGTERM at the grace deadline: dora ≥ 0.4 reports this as a clean stop "
            "('treating as clean'), but the node's own cleanup never ran."
        )
    said = f" (dora {d['series']} reports it as a failure)" if d.get("series") else ""
    return f"Ended by SIGTERM at the grace deadline{said}; the node's own cleanup never ran."


def _handler_exit(d: Dict[str, Any]) -> str:
    return (
        f"Ended by dora's SIGTERM at the grace deadline ({d['grace']:g} s) through its own "
        f"SIGTERM handler: the process exited {d['after_s']:.2f} s after the stop with no "
        "failure line from dora, it catches SIGTERM (SigCgt in /proc/PID/status), and it had "
        "not left its event loop on STOP; dora counts a handler's exit status 0 as a clean "
        "stop, but the node did not stop on its own."
    )


_SAY: Dict[str, Callable[[Dict[str, Any]], str]] = {
    v.F_SAMPLING: lambda d: f"Sampling: {d['detail']}.",
    v.F_DORA_LINE: lambda d: str(d["text"]),
    v.F_STOP: _stop,
    v.F_SIGTERM_AT_GRACE: _terminated_at_grace,
    v.F_SURVIVED_SIGTERM: _survived,
    v.F_HANDLER_EXIT: _handler_exit,
    v.F_ENDED_BEFORE_STOP: lambda d: "The node ended before the stop request: nothing to diagnose.",
    v.F_FEW_SAMPLES: lambda d: (
        f"Only {d['ticks']:.0f} samples between the stop request and the end "
        f"({d['seconds']:.2f} s): too few to say what the node was doing."
    ),
    v.F_FAILED_OWN: lambda d: "It exited with an error of its own, not because of the stop.",
    v.F_NO_END_LINE: lambda d: (
        f"How it ended is unknown: {d['why']}; no grace value is derived from it."
    ),
    v.F_WAITED: _waited,
    v.F_REACTED_CONTENDED: lambda d: (
        f"{d['thread']} reacted {d['after_s']:.2f} s after the stop, but other threads held "
        f"the GIL {d['share']:.0%} of the remaining {d['seconds']:.2f} s, so its cleanup "
        "could hardly run."
    ),
    v.F_HOLDER: _holder,
    v.F_STUCK: lambda d: (
        f"{d['thread']} stayed{_describe_wait(d['wait'])} from before the stop request until "
        f"the end, {d['seconds']:.2f} s, and no other thread held the GIL long enough "
        "to explain it: it never read STOP."
    ),
    v.F_BUSY: lambda d: (
        f"{d['thread']} was busy in {d['frame'].function} ({d['frame'].where()}) from before "
        f"the stop request until the end, {d['seconds']:.2f} s, and never went back to wait "
        "for events: it never read STOP."
    ),
    v.F_NO_MAIN_SAMPLES: lambda d: f"No samples of {d['thread']} after the stop request.",
    v.F_EXIT_WAIT: _exit_wait,
    v.F_AT_SIGTERM: _at_sigterm,
    v.F_SLOW: _slow,
    v.F_LAST_SECOND: _last_second,
    v.F_STARTING: _starting,
    v.F_STARTUP_KILL: _startup_killed,
    v.F_HEALTH_KILL: _health_killed,
    v.F_OPERATOR: _operator,
    v.F_VICTIM: _victim,
    v.F_DAEMON_ORPHAN: _orphan,
    v.F_DAEMON_BEFORE: lambda d: (
        f"dora's daemon exited {d['seconds']:.2f} s before this node "
        "ended: the node lost its daemon; that was not a stop."
    ),
    v.F_COORDINATOR_GONE: lambda d: (
        "dora's coordinator exited during the watch: a stop request after that could not "
        "be seen, so this node's end comes from its process exit alone."
    ),
}
