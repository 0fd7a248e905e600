"""Find and follow the coordinator's and daemons' log files of a live dataflow.

dora writes no line when a node is asked to stop, and a clean exit leaves none at all; the
lines it does write (the stop request, each node failure) are followed from where the files
end when the watch starts, so that only this shutdown's lines are read.

``watch``'s baseline waits for the files to be written (:class:`LogWake`, inotify) instead of
looking at them every 100 ms in each follower, which was the largest single part of its cost
(~0.2 % of one core per follower; bench/watch_parts.py): dora's quiet logs are written a few
times per dataflow, and its stop line is read the moment it lands. Linux only, through libc
(``inotify_init1``, ``inotify_add_watch``); where it cannot be had (another system, the
per-user watch limit reached) :meth:`LogWake.open` returns None and the files are polled as
before. Each file is watched itself, not its directory: nodes' own logs may be written next to
them many times a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple

import psutil

from dora_doctor.executables import option_value
from dora_doctor.model import NodeProcess


@dataclass
class LogFiles:
    """Where this dataflow's coordinator and daemon write, when they run on this machine."""

    coordinator: Optional[Path] = None
    daemons: List[Path] = field(default_factory=list)

    def all(self) -> List[Tuple[str, Path]]:
        found = [("coordinator", self.coordinator)] if self.coordinator else []
        return found + [("daemon", p) for p in self.daemons]


def find_log_files(nodes: List[NodeProcess], coordinator_port: Optional[int]) -> LogFiles:
    """The daemon is the parent of its node processes, and both it and the coordinator
    write ``out/dora-*.txt`` under their working directory (dora ≥ 0.4); a daemon started
    with ``--machine-id ID`` names its log ``dora-daemon-ID.txt``."""
    result = LogFiles()
    for node in nodes:
        if node.pid is None or node.remote:
            continue
        try:
            daemon = psutil.Process(node.pid).parent()
            cwd = Path(daemon.cwd()) if daemon else None
        except (psutil.Error, OSError):
            continue
        if cwd is not None:
            named = cwd / "out" / f"dora-daemon-{node.machine}.txt"
            log = named if node.machine and named.is_file() else cwd / "out" / "dora-daemon.txt"
            if log.is_file() and log not in result.daemons:
                result.daemons.append(log)
    result.coordinator = _coordinator_log(coordinator_port)
    return result


def _coordinator_log(port: Optional[int]) -> Optional[Path]:
    for proc in _coordinators(port):
        try:
            log = Path(proc.cwd()) / "out" / "dora-coordinator.txt"
        except (psutil.Error, OSError):
            continue
        if log.is_file():
            return log
    return None


def _coordinators(port: Optional[int]) -> Iterator[psutil.Process]:
    """Local ``dora coordinator`` processes listening on ``port`` (dora's default if None)."""
    wanted = str(port or 6013)
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "coordinator" not in cmdline or not any("dora" in part for part in cmdline[:3]):
            continue
        given = option_value(cmdline, "--port") or (proc_env_port(proc) or "6013")
        control = option_value(cmdline, "--control-port") or "6012"  # 0.3.x: the CLI's port
        if wanted in (given, control):
            yield proc


def proc_env_port(proc: psutil.Process) -> Optional[str]:
    try:
        return proc.environ().get("DORA_COORDINATOR_PORT")
    except (psutil.Error, OSError):
        return None


class _Tail:
    """New complete lines of a growing file, from the size it had when the watch began."""

    def __init__(self, source: str, path: Path) -> None:
        self.source = source
        self.path = path
        try:
            self.offset = path.stat().st_size
        except OSError:
            self.offset = 0
        self.partial = ""

    def lines(self) -> List[str]:
        try:
            if os.stat(self.path).st_size == self.offset:
                return []  # nothing new: the usual case, polled ten times a second
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                handle.seek(self.offset)
                data = handle.read()
                self.offset = handle.tell()
        except OSError:
            return []
        data = self.partial + data
        *complete, self.partial = data.split("\n")
        return complete


IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004  # truncation shows as a change of size
IN_MOVE_SELF = 0x00000800
IN_DELETE_SELF = 0x00000400
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)
_MASK = IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF


def _libc() -> Optional[ctypes.CDLL]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (OSError, AttributeError):
        return None
    return libc


class LogWake:
    """Readable (``fileno()``, for ``select.poll``) once a watched file was written since the
    last :meth:`clear`."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls, paths: Iterable[Path]) -> Optional["LogWake"]:
        """Watch every one of ``paths``; None when any cannot be watched (the caller then
        polls: a file not watched would be a stop line not seen)."""
        wanted: List[Path] = list(dict.fromkeys(paths))
        libc = _libc() if wanted else None
        if libc is None:
            return None
        fd = int(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0:
            return None
        for path in wanted:
            if int(libc.inotify_add_watch(fd, os.fsencode(path), _MASK)) < 0:
                os.close(fd)
                return None
        return cls(fd)

    def fileno(self) -> int:
        return self.fd

    def clear(self) -> None:
        """Read the pending events (their content does not matter: every file is read)."""
        with contextlib.suppress(OSError):  # EAGAIN: nothing (left) to read
            while os.read(self.fd, 65536):
                pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
