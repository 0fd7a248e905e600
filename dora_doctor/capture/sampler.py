"""Sample every Python node's threads with py-spy, all nodes at once.

Why ``py-spy record`` in back-to-back one-second segments, two recorders per node
----------------------------------------------------------------------------------
Measured on the 2-core machine this was built on (see ``bench/``): a loop of
``py-spy dump --json`` costs 6–16 ms per call (process start plus attaching to the target)
and tops out near 36 dumps/s per node at 8 nodes, while one ``py-spy record -r 200`` per
node keeps 199 samples/s per node at 8 nodes for about 1.5 % CPU each. Only ``record``
reaches the 100 samples/s per node the shutdown window needs, but it writes its output
when it ends, and no single output format says, per sample, both what every thread was
doing and which thread held the GIL:

* ``--idle --format chrometrace`` has every thread at every sample, with timestamps, but
  no GIL flag;
* ``--gil --format raw`` has exact per-thread, per-stack counts of the samples in which
  that thread held the GIL (chrometrace with ``--gil`` would merge a thread's spans
  across the samples where another thread held the GIL, so it overstates holders).

So each node gets both recorders, each restarted every ``segment_s`` seconds (py-spy's
``--duration`` takes whole seconds). A segment yields the per-thread stack timeline and the
GIL counts for that second; the gap between segments is py-spy's start-up (~10–30 ms).
Segments are what the live view and the recording are updated with, and stopping sends
SIGINT, which makes py-spy finish its current sample, resume the target and write what it
has: the target is never left paused.

Neither recorder pauses the node by default: pausing a CPU-bound node for each of 200
samples a second cost it 14-19 % of its throughput, reading its memory while it runs 1.3 %
(``bench/overhead.py``). ``--blocking`` pauses it for exact stacks. A process can have only
one ptrace tracer. When a debugger, ``strace -p`` or another profiler is attached to a node,
the pausing stacks recorder (``--blocking``) fails at once with EPERM
(measured with py-spy 0.4.3 and ``strace -p``: "Failed to suspend process"), while the
``--nonblocking`` one, which only reads memory, keeps working. So that node's stacks
recorder switches to ``--nonblocking`` and a ``sampler-degraded`` event says so and why,
instead of the node being reported as not sampled for lack of rights.

Baseline, then full rate (``watch``)
------------------------------------
Two recorders per node at 20 Hz cost 15 % of one core for 8 idle nodes, most of it the
restart of py-spy every segment (bench/watch_parts.py). With ``baseline_rate`` set, each node
has only its stacks recorder, at that low rate, in long segments and never pausing it, until
:meth:`Sampler.escalate`: then full-rate recorders (stacks and GIL) start at once, beside the
baseline one, which is ended with SIGINT so that its segment (the moments before the stop)
is kept. Starting the new recorders without waiting for the old one to write its output is
what keeps the first full-rate sample close to the stop line (bench/watch_first_sample.py).
"""

from __future__ import annotations

import queue
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from dora_doctor.capture import pyspy
from dora_doctor.dora.discover import process_running
from dora_doctor.errors import FAILURE, DoctorError
from dora_doctor.model import GilSegment, NodeProcess, ProcessEvent, SamplerOptions, StackSegment

SamplerOutput = Union[StackSegment, GilSegment, ProcessEvent]

_MAX_FAILURES = 3
# py-spy writes its output only when a recording ends; SIGINT ends it early. A SIGINT that
# comes before py-spy is ready is ignored (measured: the segment then runs its whole length),
# so it is sent again every RESEND_S until py-spy ends.
FIRST_SEGMENT_S = 0.2
# a baseline recorder's first segment: long enough for a sample or two at a low rate, so each
# node's first stacks are in the recording soon after it is followed
FIRST_BASELINE_S = 1.5
# ...and as many short ones as it takes for the first sample (a loaded machine: py-spy's
# start-up alone can outlast one), at most this many: then the baseline's long segments
FIRST_BASELINE_TRIES = 10
# how long escalate() keeps asking the baseline recorders to end (they end within a sample)
BASELINE_END_S = 10.0
RESEND_S = 0.1
_FATAL = {"permission", "not-python"}
# ProcessEvent kinds the sampler writes: it could not sample the node at all, or it samples
# it in a lesser way (the detail says which and why)
SAMPLER_ERROR = "sampler-error"
DEGRADED = "sampler-degraded"


class Sampler:
    """Runs the recorders in threads and puts their results on ``self.output``.

    The caller drains ``output`` from one thread (it writes the recording and updates the
    live view), so nothing here formats or stores anything.
    """

    def __init__(
        self,
        nodes: List[NodeProcess],
        options: Optional[SamplerOptions] = None,
        pyspy_path: Optional[str] = None,
    ) -> None:
        self.nodes = [n for n in nodes if n.sample_pid is not None]
        self.options = options or SamplerOptions()
        self.pyspy = pyspy_path or pyspy.find_pyspy()
        self.output: "queue.Queue[SamplerOutput]" = queue.Queue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._running: Dict[int, "subprocess.Popen[str]"] = {}
        self._threads: List[threading.Thread] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="dora-doctor-")
        # Python < 3.11: per sampled PID, pthread id → OS thread id (see pyspy.os_thread_ids),
        # learnt by the stacks recorder, and the GIL segment waiting for the map of its second
        self._os_ids: Dict[int, Dict[int, int]] = {}
        self._pending: Dict[int, GilSegment] = {}
        self.baseline = self.options.baseline_rate is not None
        self._escalated = threading.Event()
        self._baseline_procs: Dict[int, "subprocess.Popen[str]"] = {}
        self.escalated_at: Optional[float] = None  # time.time() of escalate()
        self.escalated_because: Optional[str] = None

    def start(self) -> None:
        for node in self.nodes:
            for gil in (False,) if self.baseline else (False, True):
                self._spawn(node, gil, self.baseline)

    def _spawn(self, node: NodeProcess, gil: bool, baseline: bool) -> None:
        kind = "baseline" if baseline else "gil" if gil else "stacks"
        thread = threading.Thread(
            target=self._loop,
            args=(node, gil, baseline),
            name=f"sampler-{node.id}-{kind}",
            daemon=True,
        )
        with self._lock:
            self._threads.append(thread)
        thread.start()

    @property
    def escalated(self) -> bool:
        return self._escalated.is_set()

    def wait_escalated(self, timeout: float) -> bool:
        """Sleep until :meth:`escalate` or ``timeout``: the baseline's idle wait that a stop
        cuts short."""
        return self._escalated.wait(timeout)

    def escalate(self, because: str, since: Optional[float] = None) -> bool:
        """A stop is beginning (at ``since``, by default now): sample every node still
        running at full rate from now on.

        Safe from any thread and idempotent; True the first time. The baseline recorders are
        ended (SIGINT: their segment is written and kept) after the full-rate ones started,
        and their segment is cut at ``since``: a low-rate span says where a thread was at its
        last sample, and drawn on past the stop it would hide the reaction the full-rate
        samples see."""
        with self._lock:
            if not self.baseline or self._escalated.is_set() or self._stopping.is_set():
                return False
            self._escalated.set()
            self.escalated_at = time.time() if since is None else since
            self.escalated_because = because
        for node in self.nodes:
            assert node.sample_pid is not None
            if process_running(node.sample_pid):
                for gil in (False, True):
                    self._spawn(node, gil, False)
        ender = threading.Thread(target=self._end_baseline, name="baseline-end", daemon=True)
        ender.start()
        return True

    def _end_baseline(self) -> None:
        """SIGINT each baseline recorder until it has ended: py-spy at a low rate can miss
        the first one (measured: a 1 Hz recorder ran on 3 s after it)."""
        deadline = time.monotonic() + BASELINE_END_S
        while time.monotonic() < deadline:
            with self._lock:
                baseline = list(self._baseline_procs.values())
            if not baseline:
                return
            for proc in baseline:
                _signal(proc, signal.SIGINT)
            time.sleep(RESEND_S)

    def done(self) -> bool:
        """True once every node's recorders have ended (its process exited, or stop())."""
        with self._lock:
            return all(not t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 5.0) -> None:
        """End every recorder, keeping the samples of the segment under way."""
        self._stopping.set()
        with self._lock:
            running = list(self._running.values())
        for proc in running:
            _signal(proc, signal.SIGINT)
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            leftovers = list(self._running.values())
        for proc in leftovers:  # py-spy ignored SIGINT: killing the tracer detaches it
            _signal(proc, signal.SIGKILL)
        for thread in threads:
            thread.join(1.0)
        for pid in list(self._pending):
            self._flush_pending(pid)
        self._tmp.cleanup()

    def _loop(self, node: NodeProcess, gil: bool, baseline: bool = False) -> None:
        assert node.sample_pid is not None
        pid = node.sample_pid
        failures = 0
        segment = 0
        # the baseline never pauses a node: it runs all the time, on nodes that are not
        # stopping, where a stall costs the user and an exact stack is not yet needed
        nonblocking = self.options.nonblocking or baseline
        rate, length = self.options.rate, self.options.segment_s
        first = FIRST_SEGMENT_S
        if baseline:
            assert self.options.baseline_rate is not None
            rate, length = self.options.baseline_rate, self.options.baseline_segment_s
            # py-spy takes its first sample only after a period (measured: a 1 Hz recorder
            # cut at 1.5 s had none)
            first = max(FIRST_BASELINE_S, 2.5 / rate)
        # short segments until the first sample (full rate: only the first one)
        short = FIRST_BASELINE_TRIES if baseline else 1
        while not self._stopping.is_set() and not (baseline and self._escalated.is_set()):
            if not process_running(pid):
                return  # the stop watch records when and how it ended
            if not gil and not nonblocking:
                tracer = pyspy.tracer_of(pid)
                if tracer is not None:
                    nonblocking = True
                    self._degrade(node, pid, tracer)
            segment += 1
            out = Path(self._tmp.name) / f"{pid}-{'gil' if gil else 'stacks'}-{segment}"
            argv = pyspy.record_argv(
                self.pyspy,
                pid,
                out,
                gil=gil,
                rate=rate,
                duration_s=length,
                nonblocking=nonblocking,
            )
            start = time.time()
            proc = self._launch(argv, baseline)
            if proc is None:
                return
            # the first segment is cut short, so that every node's first stacks reach the
            # recording and the live view well within a second of attaching; a later one
            # ends by its --duration, or is ended if py-spy hangs
            try:
                stdout, stderr = _output_after(proc, first if segment <= short else length + 30)
            finally:
                with self._lock:
                    self._running.pop(id(proc), None)
                    self._baseline_procs.pop(id(proc), None)
            end = time.time()
            summary = pyspy.parse_summary(stdout)
            if summary is None:
                if not process_running(pid) or self._stopping.is_set():
                    continue
                if baseline and self._escalated.is_set():
                    return  # ended before it wrote: the full-rate recorders have taken over
                kind, message = pyspy.classify_error(stderr + stdout, pid)
                if kind == "permission" and not gil and not nonblocking:
                    # EPERM on pausing, though the preflight could read the process: another
                    # tracer took it (maybe only for an instant); reading without pausing works
                    nonblocking = True
                    self._degrade(node, pid, pyspy.tracer_of(pid))
                    continue
                failures += 1
                if kind in _FATAL or failures >= _MAX_FAILURES:
                    if not gil:
                        self.output.put(
                            ProcessEvent(node.dataflow, node.id, pid, end, SAMPLER_ERROR, message)
                        )
                    return
                continue
            failures = 0
            samples, errors = summary
            result = self._segment(node, pid, gil, out, start, end, samples, errors)
            out.unlink(missing_ok=True)
            if isinstance(result, StackSegment) and any(t.spans for t in result.threads):
                short = min(short, segment)  # sampled: the next segments are long
            if baseline and self.escalated_at is not None and isinstance(result, StackSegment):
                kept = _cut(result, self.escalated_at)
                if kept is None:
                    return  # it began after the stop: the full-rate recorders cover that
                result = kept
            if isinstance(result, GilSegment):
                # the stacks recorder of the previous second has written its map by now
                self._flush_pending(pid)
                if pyspy.needs_os_thread_ids(result.stacks):
                    with self._lock:
                        self._pending[pid] = result
                    continue
            self.output.put(result)

    def _flush_pending(self, pid: int) -> None:
        with self._lock:
            pending = self._pending.pop(pid, None)
            ids = dict(self._os_ids.get(pid, {}))
        if pending is not None:
            pending.stacks = pyspy.with_os_thread_ids(pending.stacks, ids)
            self.output.put(pending)

    def _degrade(self, node: NodeProcess, pid: int, tracer: Optional[Tuple[int, str]]) -> None:
        """Say once, in the recording and to the user, that this node's stacks are now read
        without pausing it, and why."""
        who = (
            f"is traced by {tracer[1]} (pid {tracer[0]})"
            if tracer is not None
            else "could not be paused (EPERM: another tracer, such as a debugger, strace or a "
            "second profiler, held it)"
        )
        detail = (
            f"process {pid} {who}, so py-spy cannot pause it: sampling it without pausing "
            "(--nonblocking) from now on; its stacks may be less exact"
        )
        self.output.put(ProcessEvent(node.dataflow, node.id, pid, time.time(), DEGRADED, detail))

    def _launch(self, argv: List[str], baseline: bool = False) -> "Optional[subprocess.Popen[str]]":
        with self._lock:
            if self._stopping.is_set() or (baseline and self._escalated.is_set()):
                return None
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=pyspy.pyspy_env(),
                start_new_session=True,  # our Ctrl-C is forwarded by stop(), once, as SIGINT
            )
            self._running[id(proc)] = proc
            if baseline:
                self._baseline_procs[id(proc)] = proc
            return proc

    def _segment(
        self,
        node: NodeProcess,
        pid: int,
        gil: bool,
        out: Path,
        start: float,
        end: float,
        samples: int,
        errors: int,
    ) -> SamplerOutput:
        if gil:
            try:
                text = out.read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            return GilSegment(
                node.dataflow, node.id, pid, start, end, samples, errors, pyspy.parse_raw(text)
            )
        threads, ids = pyspy.load_chrometrace_ids(out, origin=start)
        with self._lock:
            self._os_ids.setdefault(pid, {}).update(ids)
        ticks = pyspy.ticks_from_samples(samples, threads)
        return StackSegment(node.dataflow, node.id, pid, start, end, ticks, errors, threads)


def _cut(segment: StackSegment, at: float) -> Optional[StackSegment]:
    """``segment`` up to ``at`` only (its ticks in proportion), None if it began after."""
    if segment.start >= at:
        return None
    if segment.end <= at:
        return segment
    share = (at - segment.start) / max(segment.end - segment.start, 1e-9)
    threads = []
    for track in segment.threads:
        spans = [replace(s, end=min(s.end, at)) for s in track.spans if s.start < at]
        threads.append(replace(track, spans=spans))
    return replace(segment, end=at, ticks=round(segment.ticks * share), threads=threads)


def _output_after(proc: "subprocess.Popen[str]", after_s: float) -> Tuple[str, str]:
    """py-spy's output once it ends, or at ``after_s``: SIGINT, again each RESEND_S until
    it ends."""
    wait = after_s
    while True:
        try:
            return proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGINT)
            wait = RESEND_S


def _signal(proc: "subprocess.Popen[str]", sig: signal.Signals) -> None:
    try:
        proc.send_signal(sig)
    except (ProcessLookupError, OSError):
        pass


def preflight(nodes: List[NodeProcess], pyspy_path: Optional[str] = None) -> None:
    """One quick ``py-spy dump`` before the watch, so a missing permission is one clear
    line up front instead of an empty table later."""
    if not nodes:
        return
    binary = pyspy_path or pyspy.find_pyspy()
    for node in nodes:
        assert node.sample_pid is not None
        try:
            result = subprocess.run(
                [binary, "dump", "--pid", str(node.sample_pid), "--nonblocking"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=20,
                env=pyspy.pyspy_env(),
                check=False,
            )
        except subprocess.TimeoutExpired:
            continue
        if result.returncode == 0:
            return
        kind, message = pyspy.classify_error(result.stderr + result.stdout, node.sample_pid)
        if kind == "permission":
            raise DoctorError(message, FAILURE)
