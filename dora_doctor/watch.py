"""``inspect`` as a library call: sample one dataflow's nodes into a recording until it ends.

discover → :class:`~dora_doctor.sampler.Sampler` → :class:`RecordingWriter`; the live view
is fed through a callback with plain numbers, and the final report is computed from the
recording file alone, exactly as a later ``report`` of the same file would.
"""

from __future__ import annotations

import queue
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from dora_doctor import diagnose
from dora_doctor.findings import NodeFinding
from dora_doctor.model import Dataflow, GilSegment, NodeProcess, ProcessEvent, StackSegment
from dora_doctor.recording import Recording, RecordingWriter, make_header, read_recording
from dora_doctor.sampler import Sampler, SamplerOptions, SamplerOutput, is_alive


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
    ended_because: Optional[str] = None

    def update(self, item: SamplerOutput) -> None:
        live = self.nodes.get(item.node)
        if live is None:
            return
        if isinstance(item, StackSegment):
            live.samples += item.ticks
            live.last_stacks = item
            live.state = "sampling"
        elif isinstance(item, GilSegment):
            finding = NodeFinding(id=live.node.id, pid=live.node.pid, python=True)
            stacks = [live.last_stacks] if live.last_stacks else []
            diagnose.fill_sampling(finding, stacks, [item])
            live.gil_share = finding.gil.held_share
            live.top_frame = finding.top_frame
        elif isinstance(item, ProcessEvent):
            live.state = "exited" if item.kind == "exited" else f"error: {item.detail}"


@dataclass
class InspectOptions:
    duration_s: Optional[float] = None
    record: Optional[Path] = None
    sampler: SamplerOptions = field(default_factory=SamplerOptions)
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
            node, state="sampling" if node.sample_pid else f"skipped: {node.skip_reason}"
        )
    sampler = Sampler(dataflow.nodes, options.sampler, pyspy_path)
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
    with tempfile.TemporaryDirectory(prefix="dora-doctor-") as tmp:
        path = options.record or Path(tmp) / "inspect.ddrec"
        with RecordingWriter(path, header) as writer:
            sampler.start()
            try:
                _pump(sampler, writer, state, options, on_update)
            except KeyboardInterrupt:
                state.ended_because = "interrupted (Ctrl-C)"
            finally:
                sampler.stop()
                _drain(sampler, writer, state)
            if on_update:
                on_update(state)
        recording = read_recording(path)
    recording.path = options.record
    recording.header["ended_because"] = state.ended_because
    return recording


def _pump(
    sampler: Sampler,
    writer: RecordingWriter,
    state: LiveState,
    options: InspectOptions,
    on_update: Optional[Callable[[LiveState], None]],
) -> None:
    deadline = time.monotonic() + options.duration_s if options.duration_s else None
    next_refresh = 0.0
    while True:
        try:
            item = sampler.output.get(timeout=0.1)
        except queue.Empty:
            pass
        else:
            writer.write(item)
            state.update(item)
        now = time.monotonic()
        if on_update and now >= next_refresh:
            on_update(state)
            next_refresh = now + options.refresh_s
        if deadline is not None and now >= deadline:
            state.ended_because = f"--duration {options.duration_s:g} s elapsed"
            return
        if sampler.output.empty() and _all_gone(sampler, state.dataflow.nodes):
            state.ended_because = "every node process has exited"
            return


def _all_gone(sampler: Sampler, nodes: List[NodeProcess]) -> bool:
    if sampler.nodes:
        return sampler.done()
    # nothing to sample (no Python node): watch the processes themselves
    return not any(n.pid and is_alive(n.pid) for n in nodes)


def _drain(sampler: Sampler, writer: RecordingWriter, state: LiveState) -> None:
    while True:
        try:
            item = sampler.output.get_nowait()
        except queue.Empty:
            return
        writer.write(item)
        state.update(item)
