"""``inspect`` as a library call: sample one dataflow's nodes into a recording until it ends.

discover → :class:`~dora_doctor.capture.sampler.Sampler` +
:class:`~dora_doctor.capture.endwatch.StopWatch`
→ :class:`RecordingWriter`. The live view is fed through a callback with plain numbers, and
the final report is computed from the recording file alone, exactly as a later ``report``
of the same file would.
"""

from __future__ import annotations

import contextlib
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

from dora_doctor import model
from dora_doctor.analysis import diagnose
from dora_doctor.analysis.findings import NodeFinding
from dora_doctor.capture import lastdump, locals_dump
from dora_doctor.capture.endwatch import DAEMON_GONE_LINGER_S, DoraProcess, StopWatch
from dora_doctor.capture.logtail import LogFiles
from dora_doctor.capture.sampler import Sampler
from dora_doctor.capture.threadcpu import CpuMeter
from dora_doctor.dora import versions
from dora_doctor.dora.client import DoraCli
from dora_doctor.dora.discover import process_running
from dora_doctor.errors import DoctorError
from dora_doctor.logs import events as logevents
from dora_doctor.model import (
    REMOTE,
    CpuSegment,
    Dataflow,
    GilSegment,
    NodeProcess,
    ProcessEvent,
    SamplerOptions,
    StackSegment,
)
from dora_doctor.recording.codec import make_header
from dora_doctor.recording.model import Recording
from dora_doctor.recording.reader import read_recording
from dora_doctor.recording.writer import RecordingWriter
from dora_doctor.units import format_duration

# ``watch``'s baseline reads /proc every 4 s (bench/watch_parts.py: 0.65 % of one core for 8
# nodes once a second, 0.23 % every 2 s, against 10 % at the 50 ms of a shutdown); two
# windows still fall in the 10 s before a stop that the thread rules of the analysis look at
BASELINE_CPU_POLL_S = 4.0
# the pump's sleep when nothing came: in the baseline nothing it does is urgent (the switch
# to full rate is made by the stop watch's thread, and ends this sleep at once)
BASELINE_PUMP_S = 1.0

Observation = Union[
    StackSegment,
    GilSegment,
    CpuSegment,
    ProcessEvent,
    logevents.LogEvent,
    model.LocalsSnapshot,
    model.LastDump,
]


@dataclass
class NodeLive:
    """What the live table shows for one node."""

    node: NodeProcess
    samples: int = 0
    gil_share: Optional[float] = None
    top_frame: Optional[str] = None
    state: str = "waiting"
    last_stacks: Optional[StackSegment] = None


@dataclass
class LiveState:
    dataflow: Dataflow
    dora_version: Optional[str]
    started: float = field(default_factory=time.time)
    nodes: Dict[str, NodeLive] = field(default_factory=dict)
    stop_requested: Optional[float] = None
    ended_because: Optional[str] = None
    # one-line messages for the user, as they happen (dora's daemon gone, a node that can
    # only be sampled in a lesser way); the caller takes them with ``notices.pop(0)``
    notices: List[str] = field(default_factory=list)

    def update(self, item: Observation) -> None:
        if isinstance(item, logevents.LogEvent):
            if item.kind == logevents.STOP_REQUEST and item.dataflow in (None, self.dataflow.uuid):
                self.stop_requested = self.stop_requested or item.time
            elif item.kind in (logevents.DAEMON_GONE, logevents.COORDINATOR_GONE):
                self.notices.append(item.text)
            return
        live = self.nodes.get(item.node)
        if live is None or isinstance(item, (CpuSegment, model.LocalsSnapshot, model.LastDump)):
            return
        if isinstance(item, StackSegment):
            live.samples += item.ticks
            live.last_stacks = item
            if live.state in ("waiting", "sampling"):
                live.state = "sampling"
        elif isinstance(item, GilSegment):
            finding = NodeFinding(id=live.node.id, pid=live.node.pid, python=True)
            stacks = [live.last_stacks] if live.last_stacks else []
            diagnose.fill_sampling(finding, stacks, [item])
            live.gil_share = finding.gil.held_share
            live.top_frame = finding.top_frame
        elif item.kind == "exited":
            live.state = "exited"
            if self.stop_requested:
                live.state += f" {item.time - self.stop_requested:.2f} s after the stop request"
        elif item.kind in model.PROCESS_FACTS:
            return  # a fact for the analysis, nothing the live table shows
        elif item.kind == "sampler-degraded":
            live.state = "sampling (nonblocking)"
            self.notices.append(f"node {item.node}: {item.detail}")
        else:
            live.state = f"error: {item.detail}"
            self.notices.append(f"node {item.node} is not sampled: {item.detail}")


@dataclass
class StopPlan:
    """dora-doctor stops the dataflow itself (``inspect --stop``) after ``after_s``."""

    cli: DoraCli
    after_s: float
    grace_s: Optional[float] = None


@dataclass
class InspectOptions:
    duration_s: Optional[float] = None
    record: Optional[Path] = None
    sampler: SamplerOptions = field(default_factory=SamplerOptions)
    log_files: LogFiles = field(default_factory=LogFiles)
    stop: Optional[StopPlan] = None
    refresh_s: float = 0.5
    # dora's daemon(s) and coordinator, watched so that their death ends or informs the watch
    dora_processes: List[DoraProcess] = field(default_factory=list)
    locals: bool = False  # read local variables at the stop and at the end (localvars)
    last_dump: bool = True  # a native dump before dora's deadlines (capture/lastdump.py)


def inspect_dataflow(
    dataflow: Dataflow,
    dora_version: Optional[str],
    options: InspectOptions,
    on_update: Optional[Callable[[LiveState], None]] = None,
    pyspy_path: Optional[str] = None,
    on_notice: Optional[Callable[[str], None]] = None,
) -> Recording:
    """Sample until every node process is gone, ``duration_s`` passes, or Ctrl-C.

    When every daemon of the dataflow dies, the watch ends ``DAEMON_GONE_LINGER_S`` later:
    the nodes still running are orphans that may never exit. ``on_notice`` gets one line
    per thing the user should know at once (see ``LiveState.notices``).

    Returns the recording read back from disk. Ctrl-C (KeyboardInterrupt) ends the watch
    normally: the segment under way is kept and the recording stays valid.
    """
    state = LiveState(dataflow, dora_version)
    for node in dataflow.nodes:
        state.nodes[node.id] = NodeLive(node, state=_first_state(node))
    sampler = Sampler(dataflow.nodes, options.sampler, pyspy_path)
    inbox: "queue.Queue[Observation]" = queue.Queue()
    meter = (
        # one reading per window: the CPU each thread used since the previous one, and its
        # state at that instant
        CpuMeter(dataflow.nodes, inbox, poll_s=BASELINE_CPU_POLL_S, polls_per_window=1)
        if sampler.baseline
        else CpuMeter(dataflow.nodes, inbox)
    )

    def full_rate(because: str, when: float) -> None:
        """``watch``'s baseline ends at the first sign of a stop, straight from the thread
        that saw it: every step between dora's stop line and the first full-rate sample
        counts against the 0.3 s of issue 15."""
        if sampler.escalate(because, when):
            meter.speed_up()

    watch = StopWatch(
        dataflow.nodes,
        options.log_files,
        inbox,
        options.dora_processes,
        on_stop=full_rate if sampler.baseline else None,
    )
    reader = (
        locals_dump.LocalsReader(sampler.nodes, sampler.pyspy, inbox.put)
        if options.locals
        else None
    )
    dumper = _last_dumper(options, sampler, inbox, dora_version)
    sampling = {
        "tool": "py-spy record",
        "rate": options.sampler.rate,
        "segment_s": options.sampler.segment_s,
        "nonblocking": options.sampler.nonblocking,
        "locals": options.locals,
    }
    if sampler.baseline:
        sampling["baseline_rate"] = options.sampler.baseline_rate
        sampling["baseline_segment_s"] = options.sampler.baseline_segment_s
    header = make_header([dataflow], dora_version, sampling)
    header["logs"] = {source: str(path) for source, path in options.log_files.all()}
    with tempfile.TemporaryDirectory(prefix="dora-doctor-") as tmp:
        path = options.record or Path(tmp) / "inspect.ddrec"
        with RecordingWriter(path, header) as writer:
            watch.start()
            meter.start()
            sampler.start()
            stopper = _start_stopper(options.stop, dataflow, inbox)
            try:
                pump_args = (on_update, reader, on_notice, meter, dumper)
                _pump(sampler, watch, inbox, writer, state, options, *pump_args)
            except KeyboardInterrupt:
                state.ended_because = "interrupted (Ctrl-C)"
            finally:
                if reader is not None:
                    with contextlib.suppress(KeyboardInterrupt):  # a 2nd Ctrl-C skips only this
                        reader.at_end()
                if dumper is not None:
                    dumper.stop()
                sampler.stop()
                meter.stop()
                watch.stop()
                if stopper is not None:
                    stopper.join(_STOPPER_WAIT_S)
                _drain(sampler, inbox, writer, state)
                _tell(state, on_notice)
            if on_update:
                on_update(state)
        recording = read_recording(path)
    recording.path = options.record
    recording.header["ended_because"] = state.ended_because
    return recording


def _last_dumper(
    options: InspectOptions,
    sampler: Sampler,
    inbox: "queue.Queue[Observation]",
    dora_version: Optional[str],
) -> Optional[lastdump.LastDumper]:
    """Native dumps pause the node: only beside recorders that never pause it (one ptrace
    tracer at a time)."""
    if not options.last_dump or not options.sampler.nonblocking:
        return None
    return lastdump.LastDumper(sampler.nodes, sampler.pyspy, inbox.put, dora_version)


def _first_state(node: NodeProcess) -> str:
    if node.sample_pid:
        return "sampling"
    reason = node.skip_reason or "unknown reason"
    return reason if reason.startswith(REMOTE) else f"not sampled: {reason}"


_STOPPER_WAIT_S = 5.0


def _start_stopper(
    plan: Optional[StopPlan], dataflow: Dataflow, inbox: "queue.Queue[Observation]"
) -> Optional[threading.Thread]:
    """Run ``dora stop`` after the baseline, in a thread: it blocks until the nodes end."""
    if plan is None:
        return None

    def stop() -> None:
        time.sleep(plan.after_s)
        args = [dataflow.uuid]
        grace = format_duration(plan.grace_s) if plan.grace_s else None
        inbox.put(
            logevents.LogEvent(
                kind=logevents.STOP_REQUEST,
                time=time.time(),
                dataflow=dataflow.uuid,
                seconds=plan.grace_s,
                source="dora-doctor",
                text="dora stop " + " ".join(args + (["--grace-duration", grace] if grace else [])),
            )
        )
        try:
            result = plan.cli.stop(dataflow.uuid, grace)
            code, text = result.returncode, _tail(result.stdout + result.stderr)
        except DoctorError as err:  # e.g. the coordinator is gone: a fact, not a crash
            code, text = None, str(err)
        inbox.put(
            logevents.LogEvent(
                kind="stop-returned",
                time=time.time(),
                dataflow=dataflow.uuid,
                exit_code=code,
                source="dora-doctor",
                text=text,
            )
        )

    thread = threading.Thread(target=stop, name="dora-stop", daemon=True)
    thread.start()
    return thread


def _tail(text: str, lines: int = 8) -> str:
    kept = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


def _pump(
    sampler: Sampler,
    watch: StopWatch,
    inbox: "queue.Queue[Observation]",
    writer: RecordingWriter,
    state: LiveState,
    options: InspectOptions,
    on_update: Optional[Callable[[LiveState], None]],
    reader: Optional[locals_dump.LocalsReader] = None,
    on_notice: Optional[Callable[[str], None]] = None,
    meter: Optional[CpuMeter] = None,
    dumper: Optional[lastdump.LastDumper] = None,
) -> None:
    deadline = time.monotonic() + options.duration_s if options.duration_s else None
    next_refresh = 0.0
    while True:
        moved = _drain(sampler, inbox, writer, state)
        _tell(state, on_notice)
        if reader is not None and state.stop_requested is not None:
            reader.at_stop()
        if dumper is not None and state.stop_requested is not None:
            dumper.at_stop(state.stop_requested, _grace_in_force(options, state))
        if state.stop_requested is not None and sampler.escalate("stop requested"):
            if meter is not None:
                meter.speed_up()  # inspect --stop's own request: it is not in dora's logs yet
        if not moved:
            if sampler.baseline and not sampler.escalated:
                sampler.wait_escalated(BASELINE_PUMP_S)
            else:
                time.sleep(0.05)
        gone = watch.daemons_gone_since()
        if gone is not None and time.time() >= gone + DAEMON_GONE_LINGER_S:
            left = [n.id for n in sampler.nodes if n.sample_pid and process_running(n.sample_pid)]
            state.ended_because = "dora's daemon has exited" + (
                f"; still running, orphaned: {', '.join(left)}" if left else ""
            )
            return
        now = time.monotonic()
        if on_update and now >= next_refresh:
            on_update(state)
            next_refresh = now + options.refresh_s
        if deadline is not None and now >= deadline:
            state.ended_because = f"--duration {options.duration_s:g} s elapsed"
            return
        if watch.settled() and sampler.done():  # lingers for dora's end lines
            state.ended_because = "every node process has exited"
            return


def _grace_in_force(options: InspectOptions, state: LiveState) -> Optional[float]:
    """Known only for a stop dora-doctor issued (its --grace-duration or dora's default)."""
    if options.stop is None:
        return None
    return options.stop.grace_s or versions.default_grace_s(state.dora_version)


def _tell(state: LiveState, on_notice: Optional[Callable[[str], None]]) -> None:
    while on_notice is not None and state.notices:
        on_notice(state.notices.pop(0))


def _drain(
    sampler: Sampler,
    inbox: "queue.Queue[Observation]",
    writer: RecordingWriter,
    state: LiveState,
) -> int:
    moved = 0
    for source in (inbox, sampler.output):
        while True:
            try:
                item = source.get_nowait()
            except queue.Empty:
                break
            writer.write(item)
            state.update(item)
            moved += 1
    return moved
