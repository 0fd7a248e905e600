"""A cheap sign that ``dora list`` may have something new: a process dora spawned.

``watch`` used to ask ``dora list`` every second. The CLI is a Python entry script in front of
the Rust binary, so each call costs ~40 ms of CPU: 4 % of one core on its own
(bench/watch_parts.py), four times the whole budget of issue 15. A new dataflow, a node
restarted or added, all start with a process whose parent is a dora daemon (or ``dora run``,
which holds a daemon). Listing ``/proc`` and reading ``stat`` of the processes not seen at the
previous look costs well under a millisecond, so the watcher asks dora only when this says
so, and at a slow backstop interval for what ``/proc`` cannot show (a coordinator or daemon
on another machine, a process this user may not read).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Set

PROC = Path("/proc")


def _parent(pid: int, proc: Path) -> Optional[int]:
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    close = text.rfind(")")  # the command name may hold spaces and parentheses
    fields = text[close + 2 :].split() if close >= 0 else []
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None


def _is_dora_daemon(pid: int, proc: Path) -> bool:
    """``dora daemon …`` or ``dora run …``, also through the Python entry script."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()[:4096]
    except OSError:
        return False
    args = [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:4]]
    named = any(os.path.basename(a) == "dora" for a in args[:2])
    return named and bool({"daemon", "run"} & set(args[1:4]))


class SpawnSignal:
    """``changed()`` is True when a dora daemon appeared or one spawned a process since the
    previous call (the first call is True: everything is new)."""

    def __init__(self, proc: Path = PROC) -> None:
        self.proc = proc
        self.available = proc.joinpath("self", "stat").is_file()
        self._known: Set[int] = set()
        self._daemons: Set[int] = set()

    def changed(self) -> bool:
        if not self.available:
            return True  # no /proc: every poll asks dora, as before
        try:
            pids = {int(name) for name in os.listdir(self.proc) if name.isdigit()}
        except OSError:
            return True
        fresh = pids - self._known
        first = not self._known
        self._known = pids
        self._daemons &= pids
        daemons = {pid for pid in fresh if _is_dora_daemon(pid, self.proc)}
        self._daemons |= daemons
        spawned = any(_parent(pid, self.proc) in self._daemons for pid in fresh - daemons)
        return first or bool(daemons) or spawned
