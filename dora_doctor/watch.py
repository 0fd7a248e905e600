"""``inspect`` as a library call: sample one dataflow's nodes into a recording until it ends.

discover → :class:`~dora_doctor.sampler.Sampler` + :class:`~dora_doctor.stopwatch.StopWatch`
→ :class:`RecordingWriter`. The live view is fed through a callback with plain numbers, and
the final report is computed from the recording file alone, exactly as a later ``report``
of the same file would.
"""

from __future__ import annotations

import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Union

from dora_doctor import diagnose, logs
from dora_doctor.doracli import DoraCli
from dora_doctor.findings import NodeFinding
from dora_doctor.model import Dataflow, GilSegment, NodeProcess, ProcessEvent, StackSegment
from dora_doctor.recording import Recording, RecordingWriter, make_header, read_recording
from dora_doctor.sampler import Sampler, SamplerOptions
from dora_doctor.stopwatch import LogFiles, StopWatch
from dora_doctor.units import format_duration

Observation = Union[StackSegment, GilSegment, ProcessEvent, logs.LogEvent]


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

    def update(self, item: Observation) -> None:
        if isinstance(item, logs.LogEvent):
            if item.kind == logs.STOP_REQUEST and item.dataflow in (None, self.dataflow.uuid):
                self.stop_requested = self.stop_requested or item.time
            return
        live = self.nodes.get(item.node)
        if live is None:
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
        else:
            live.state = f"error: {item.detail}"


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


def inspect_dataflow(
    dataflow: Dataflow,
    dora_version: Optional[str],
    options: InspectOptions,
    on_update: Optional[Callable[[LiveState], None]] = None,
    pyspy_path: Optional[str] = None,
) -> Recording:
    """Sample until every node process is gone, ``duration_s`` passes, or Ctrl-C.

    Returns the recording read back from disk. Ctrl-C (KeyboardInterrupt) ends the watch
    normally: the segment under way is kept and the recording stays valid.
    """
    state = LiveState(dataflow, dora_version)
    for node in dataflow.nodes:
        state.nodes[node.id] = NodeLive(
            node, state="sampling" if node.sample_pid else f"not sampled: {node.skip_reason}"
        )
    sampler = Sampler(dataflow.nodes, options.sampler, pyspy_path)
    inbox: "queue.Queue[Observation]" = queue.Queue()
    watch = StopWatch(dataflow.nodes, options.log_files, inbox)
    header = make_header(
        [dataflow],
        dora_version,
        {
            "tool": "py-spy record",
            "rate": options.sampler.rate,
            "segment_s": options.sampler.segment_s,
            "nonblocking": options.sampler.nonblocking,
        },
    )
    header["logs"] = {source: str(path) for source, path in options.log_files.all()}
    with tempfile.TemporaryDirectory(prefix="dora-doctor-") as tmp:
        path = options.record or Path(tmp) / "inspect.ddrec"
        with RecordingWriter(path, header) as writer:
            watch.start()
            sampler.start()
            stopper = _start_stopper(options.stop, dataflow, inbox)
            try:
                _pump(sampler, watch, inbox, writer, state, options, on_update)
            except KeyboardInterrupt:
                state.ended_because = "interrupted (Ctrl-C)"
            finally:
                sampler.stop()
                watch.stop()
                if stopper is not None:
                    stopper.join(_STOPPER_WAIT_S)
                _drain(sampler, inbox, writer, state)
            if on_update:
                on_update(state)
        recording = read_recording(path)
    recording.path = options.record
    recording.header["ended_because"] = state.ended_because
    return recording


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
            logs.LogEvent(
                kind=logs.STOP_REQUEST,
                time=time.time(),
                dataflow=dataflow.uuid,
                seconds=plan.grace_s,
                source="dora-doctor",
                text="dora stop " + " ".join(args + (["--grace-duration", grace] if grace else [])),
            )
        )
        result = plan.cli.stop(dataflow.uuid, grace)
        inbox.put(
            logs.LogEvent(
                kind="stop-returned",
                time=time.time(),
                dataflow=dataflow.uuid,
                exit_code=result.returncode,
                source="dora-doctor",
                text=_tail(result.stdout + result.stderr),
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
) -> None:
    deadline = time.monotonic() + options.duration_s if options.duration_s else None
    next_refresh = 0.0
    while True:
        moved = _drain(sampler, inbox, writer, state)
        if not moved:
            time.sleep(0.05)
        now = time.monotonic()
        if on_update and now >= next_refresh:
            on_update(state)
            next_refresh = now + options.refresh_s
        if deadline is not None and now >= deadline:
            state.ended_because = f"--duration {options.duration_s:g} s elapsed"
            return
        if watch.all_exited() and sampler.done():
            state.ended_because = "every node process has exited"
            return


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
