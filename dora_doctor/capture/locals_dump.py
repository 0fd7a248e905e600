"""Local variables of the nodes' frames, for ``inspect --locals``, and their redaction.

Why one-shot dumps at two moments, not a variable per sample
-------------------------------------------------------------
``py-spy record`` cannot read local variables; only ``py-spy dump --locals`` can (one
snapshot of every thread, frame by frame, in ``--json``). A dump costs ~10–25 ms and a few
kilobytes per node, so it is taken at the two moments a shutdown question is about:

* ``stop``: as soon as the stop request is seen (dora-doctor's own ``--stop``, or the
  coordinator's line): what each node was holding when it was asked to stop;
* ``end``: when the watch ends, for the nodes still running: what a node that never
  stopped is stuck with.

Dumps read without pausing the node (``--nonblocking``): a pause would collide with the
stacks recorder's own pauses (a process has one ptrace tracer at a time), and a collision
at a recorder's start makes that recorder fail. A value read while the thread moves may be a
moment stale; the moment is recorded with it.

Why values are redacted in every report
---------------------------------------
Local variables hold tokens, passwords, personal data. The recording keeps them (it stays on
the user's machine, like a core dump); every rendered report (terminal, JSON, Markdown,
HTML, Perfetto), which is made to be shared, keeps each variable's name and replaces its
value with ``<redacted: N chars>``, unless ``report --show-locals`` asks for the values."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence

from dora_doctor.capture import pyspy
from dora_doctor.model import (
    LOCALS_AT_END,
    LOCALS_AT_STOP,
    FrameLocals,
    LocalsSnapshot,
    LocalVar,
    NodeProcess,
    ThreadLocals,
)

if TYPE_CHECKING:
    pass


DUMP_TIMEOUT_S = 10.0


def dump_argv(binary: str, pid: int) -> List[str]:
    return [
        binary,
        "dump",
        "--pid",
        str(pid),
        "--locals",
        "--json",
        "--nonblocking",
        "--full-filenames",
    ]


def parse_dump(text: str) -> List[ThreadLocals]:
    """``py-spy dump --locals --json``: a list of threads, each with ``frames`` (innermost
    first) carrying ``locals`` of ``{name, arg, repr}``. Frames without variables are left
    out; anything that is not this shape is skipped rather than guessed at."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    threads: List[ThreadLocals] = []
    for thread in data if isinstance(data, list) else []:
        if not isinstance(thread, dict):
            continue
        found = ThreadLocals(
            thread_id=_int(thread.get("os_thread_id") or thread.get("thread_id")),
            name=str(thread.get("thread_name") or ""),
        )
        for frame in thread.get("frames") or []:
            if not isinstance(frame, dict):
                continue
            variables = [
                LocalVar(str(v.get("name", "?")), bool(v.get("arg")), str(v.get("repr", "")))
                for v in frame.get("locals") or []
                if isinstance(v, dict)
            ]
            if variables:
                found.frames.append(
                    FrameLocals(
                        function=str(frame.get("name", "")),
                        file=str(frame.get("filename", "")),
                        line=_int(frame.get("line")),
                        variables=variables,
                    )
                )
        threads.append(found)
    return threads


def take(binary: str, node: NodeProcess, moment: str) -> LocalsSnapshot:
    """One dump of ``node``'s locals now; a failure is kept as the snapshot's ``error``."""
    assert node.sample_pid is not None
    pid = node.sample_pid
    snapshot = LocalsSnapshot(node.dataflow, node.id, pid, time.time(), moment)
    out, snapshot.error = pyspy.run_dump(dump_argv(binary, pid), pid, DUMP_TIMEOUT_S)
    snapshot.threads = parse_dump(out) if snapshot.error is None else []
    return snapshot


class LocalsReader:
    """Takes the ``stop`` snapshot in a thread (the watch must not wait for it) and the
    ``end`` one when asked; every snapshot goes to ``output``."""

    def __init__(
        self, nodes: Sequence[NodeProcess], binary: str, output: Callable[[Any], None]
    ) -> None:
        self.nodes = [n for n in nodes if n.sample_pid is not None]
        self.binary = binary
        self.output = output
        self._stop_thread: Optional[threading.Thread] = None

    def at_stop(self) -> None:
        if self._stop_thread is None:
            self._stop_thread = threading.Thread(
                target=self._take_all, args=(LOCALS_AT_STOP,), name="locals-at-stop", daemon=True
            )
            self._stop_thread.start()

    def at_end(self) -> None:
        if self._stop_thread is not None:
            self._stop_thread.join(DUMP_TIMEOUT_S)
        self._take_all(LOCALS_AT_END)

    def _take_all(self, moment: str) -> None:
        from dora_doctor.dora.discover import process_running

        for node in self.nodes:
            assert node.sample_pid is not None
            if process_running(node.sample_pid):
                self.output(take(self.binary, node, moment))


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
