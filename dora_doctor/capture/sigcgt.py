"""Whether each node catches SIGTERM, re-read while it runs: a handler can come late.

Discovery reads ``SigCgt`` once, but a node may install its SIGTERM handler after that
(after ``Node()``, on its first event, or in its stop path). Whether it caught SIGTERM when
dora sent it is what tells "ended by SIGTERM through its own handler (exit 0)" from "exited
on its own", and dora logs neither. So the CPU meter, which polls ``/proc`` for every node
every 50 ms anyway, also reads ``/proc/PID/status`` and a ``process`` record is written only
when the answer changes: ``sigterm-caught`` or ``sigterm-not-caught``, the raw mask in
``detail``. A read costs one small file per node per poll (no ptrace, the node never
pauses); unchanged answers cost nothing in the recording.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional

from dora_doctor.dora.discover import SIGTERM_BIT, sigcgt_mask
from dora_doctor.model import SIGTERM_CAUGHT, SIGTERM_NOT_CAUGHT, NodeProcess, ProcessEvent


class SigCgtTracker:
    """Remembers each node's last answer (discovery's, at first) and reports changes."""

    def __init__(self, nodes: List[NodeProcess]) -> None:
        self.last: Dict[str, Optional[bool]] = {n.id: n.catches_sigterm for n in nodes}

    def poll(self, node: NodeProcess, now: Optional[float] = None) -> Optional[ProcessEvent]:
        """The change since the last read of ``node``, as a record; None if unchanged or
        unreadable (a gone process says nothing about its handler)."""
        pid = node.sample_pid
        if pid is None:
            return None
        mask = sigcgt_mask(pid)
        if mask is None:
            return None
        caught = bool(mask & SIGTERM_BIT)
        if self.last.get(node.id) is caught:
            return None
        self.last[node.id] = caught
        return ProcessEvent(
            node.dataflow,
            node.id,
            pid,
            time.time() if now is None else now,
            SIGTERM_CAUGHT if caught else SIGTERM_NOT_CAUGHT,
            f"SigCgt {mask:016x}",
        )
