"""The last dump: one full dump, with native frames, of each node still alive just before
dora's deadlines (the SIGTERM at the grace, the SIGKILL after it), so a report can say what a
terminated or killed node was doing at that moment.

When: the deadlines are the signal ladder of ``dora/versions.py`` (the same arithmetic as
``analysis/timeline.markers``) from the stop request and the grace in force. The grace is
known when dora-doctor issued the stop (``inspect --stop --grace-duration``); for a stop
someone else issued, dora's line does not carry it, so the dumps are then *rolling*: every
``ROLL_S`` while a node lives after the stop, of which only the latest per node is kept.
Either way one record per node is written, when its process is gone or the watch ends.

Why ``--native``: a thread stuck in a C call shows only its Python caller without it. A
native dump pauses the node briefly (``--native`` cannot be combined with
``--nonblocking``): only before a known deadline, twice at most per node. Rolling dumps are
``--nonblocking`` and Python frames only: a pause every 0.5 s through a long cleanup would
slow the shutdown being measured. Nothing here ever signals a node.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from dora_doctor.capture import pyspy
from dora_doctor.dora import versions
from dora_doctor.dora.discover import process_running
from dora_doctor.model import (
    DUMP_BEFORE_SIGKILL,
    DUMP_BEFORE_SIGTERM,
    DUMP_ROLLING,
    DumpFrame,
    DumpThread,
    LastDump,
    NodeProcess,
)

# How long before a deadline the dump starts (a native dump takes ~20-200 ms here)
MARGIN_S = 0.4
ROLL_S = 0.5  # rolling dumps: at most this stale when the node is killed
ROLL_FOR_S = 120.0  # and for at most this long after the stop
DUMP_TIMEOUT_S = 5.0
MAX_THREADS = 64
MAX_FRAMES = 64


def dump_argv(binary: str, pid: int, native: bool = True) -> List[str]:
    """``--native`` pauses the node (py-spy refuses it with ``--nonblocking``): only for the
    dumps timed to dora's deadlines. Rolling dumps, every 0.5 s for as long as a node lives
    past a stop of unknown grace, never pause it: pausing a node that much would slow the
    very shutdown being measured, and could get it killed."""
    mode = "--native" if native else "--nonblocking"
    return [binary, "dump", "--pid", str(pid), mode, "--json", "--full-filenames"]


def deadlines(grace_s: float, dora_version: Optional[str]) -> List[Tuple[float, str]]:
    """(seconds after the stop, which deadline) for a known grace."""
    if versions.has_sigterm_step(dora_version):
        kill = grace_s * versions.sigkill_factor(dora_version)
        return [(grace_s, DUMP_BEFORE_SIGTERM), (kill, DUMP_BEFORE_SIGKILL)]
    return [(grace_s, DUMP_BEFORE_SIGKILL)]


def parse_dump(text: str) -> List[DumpThread]:
    """``py-spy dump --native --json``; anything not of that shape is skipped, and the size
    is bounded (a target may have thousands of threads)."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    threads: List[DumpThread] = []
    for thread in (data if isinstance(data, list) else [])[:MAX_THREADS]:
        if not isinstance(thread, dict):
            continue
        found = DumpThread(
            thread_id=_int(thread.get("os_thread_id") or thread.get("thread_id")),
            name=str(thread.get("thread_name") or "")[:200],
            active=bool(thread.get("active")),
            owns_gil=bool(thread.get("owns_gil")),
        )
        for frame in (thread.get("frames") or [])[:MAX_FRAMES]:
            if not isinstance(frame, dict):
                continue
            file = str(frame.get("filename") or "")[:1000]
            found.frames.append(
                DumpFrame(
                    function=str(frame.get("name") or "?")[:500],
                    file=file,
                    line=_int(frame.get("line")),
                    native=not file.endswith(".py") and "<" not in file,
                )
            )
        threads.append(found)
    return threads


def _int(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    return number if abs(number) < 2**62 else 0


def take(binary: str, node: NodeProcess, before: str) -> LastDump:
    """One dump of ``node``; with native frames only before a known deadline."""
    assert node.sample_pid is not None
    pid = node.sample_pid
    dump = LastDump(node.dataflow, node.id, pid, time.time(), before)
    argv = dump_argv(binary, pid, native=before != DUMP_ROLLING)
    out, dump.error = pyspy.run_dump(argv, pid, DUMP_TIMEOUT_S)
    dump.threads = parse_dump(out) if dump.error is None else []
    return dump


class LastDumper:
    """Started once, when the stop request is seen; records go to ``output``."""

    def __init__(
        self,
        nodes: Sequence[NodeProcess],
        binary: str,
        output: Callable[[Any], None],
        dora_version: Optional[str],
    ) -> None:
        self.nodes = [n for n in nodes if n.sample_pid is not None and not n.remote]
        self.binary = binary
        self.output = output
        self.dora_version = dora_version
        self._latest: Dict[str, LastDump] = {}
        self._halt = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def at_stop(self, stop_time: float, grace_s: Optional[float]) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(stop_time, grace_s), name="last-dump", daemon=True
        )
        self._thread.start()

    def _alive(self) -> List[NodeProcess]:
        alive = []
        for node in self.nodes:
            assert node.sample_pid is not None
            if process_running(node.sample_pid):
                alive.append(node)
            else:
                self._flush(node.id)
        return alive

    def _run(self, stop_time: float, grace_s: Optional[float]) -> None:
        if grace_s:
            plan = [
                (stop_time + at - MARGIN_S, before)
                for at, before in deadlines(grace_s, self.dora_version)
            ]
        else:
            steps = int(ROLL_FOR_S / ROLL_S)
            plan = [(stop_time + ROLL_S * (i + 1), DUMP_ROLLING) for i in range(steps)]
        for when, before in plan:
            if self._halt.wait(max(0.0, when - time.time())):
                return
            alive = self._alive()
            if not alive:
                return
            for node in alive:
                self._latest[node.id] = take(self.binary, node, before)
            self._alive()  # a node that died during its dump: its dump is the last one

    def stop(self) -> None:
        """The watch ends: write every node's latest dump not yet written."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(DUMP_TIMEOUT_S + 1.0)
        for node in list(self._latest):
            self._flush(node)

    def _flush(self, node: str) -> None:
        dump = self._latest.pop(node, None)
        if dump is not None:
            self.output(dump)
