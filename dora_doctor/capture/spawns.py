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
from typing import Iterable, List, Optional, Set

from dora_doctor.dora.discover import stat_fields
from dora_doctor.executables import option_value

PROC = Path("/proc")


def _parent(pid: int, proc: Path) -> Optional[int]:
    try:
        return int(stat_fields(pid, str(proc))[1])
    except (OSError, IndexError, ValueError):
        return None


def _dora_daemon(pid: int, proc: Path) -> Optional[List[str]]:
    """The arguments of ``dora daemon …`` or ``dora run …`` (also through the Python entry
    script), None for any other process."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()[:4096]
    except OSError:
        return None
    args = [a.decode("utf-8", "replace") for a in raw.split(b"\0")]
    named = any(os.path.basename(a) == "dora" for a in args[:2])
    return args if named and {"daemon", "run"} & set(args[1:4]) else None


def _ours(args: List[str], port: Optional[int]) -> bool:
    """A daemon of the coordinator the watch asks: same ``--coordinator-port`` (or both
    dora's default), or ``dora run``, which has its own."""
    if "run" in args[1:4]:
        return True
    given = option_value(args, "--coordinator-port")
    return given == str(port) if port is not None else given is None


class SpawnSignal:
    """``changed()`` is True when a dora daemon of this coordinator appeared or one spawned a
    process since the previous call (the first call is True: everything is new).

    Other dora instances on the machine (tests, a second coordinator) start daemons and nodes
    too; they are no sign, unless no daemon of this coordinator is known (0.3.x daemons name
    the coordinator's daemon port, not the CLI's): then every daemon counts, until
    :meth:`adopt` names the parents of nodes the watch follows."""

    def __init__(self, port: Optional[int] = None, proc: Path = PROC) -> None:
        self.proc = proc
        self.port = port
        self.available = proc.joinpath("self", "stat").is_file()
        self._known: Set[int] = set()
        self._daemons: Set[int] = set()  # every dora daemon seen
        self._ours: Set[int] = set()  # those of this coordinator
        self.signs: Set[int] = set()  # the PIDs that made the last changed() True

    def adopt(self, node_pids: Iterable[int]) -> None:
        """The daemons that spawned these nodes (of a dataflow followed) are this one's."""
        for pid in node_pids:
            parent = _parent(pid, self.proc)
            if parent is not None and parent in self._daemons:
                self._ours.add(parent)

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
        self._ours &= pids
        new_daemons = set()
        for pid in fresh:
            args = _dora_daemon(pid, self.proc)
            if args is not None:
                new_daemons.add(pid)
                if _ours(args, self.port):
                    self._ours.add(pid)
        self._daemons |= new_daemons
        watched = self._ours or self._daemons
        spawned = {pid for pid in fresh - new_daemons if _parent(pid, self.proc) in watched}
        self.signs = (new_daemons & watched) | spawned
        return first or bool(self.signs)
