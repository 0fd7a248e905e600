"""A follower ends when the watch that started it dies, even by SIGKILL.

The watch starts one ``inspect`` child per dataflow, each with its own py-spy children, in
sessions of their own (so that a Ctrl-C at the terminal reaches only the watch). A watch
killed with SIGKILL runs no cleanup, and its followers would sample on forever. So each
follower asks the kernel for SIGINT when its parent dies (``prctl(PR_SET_PDEATHSIG)``, Linux),
and also checks ``getppid()``: every half second on other systems, and at once then every
ten seconds where the kernel took the request (the parent may have died before the prctl
call). SIGINT ends ``inspect`` as Ctrl-C does: its py-spy recorders are
stopped and its recording stays valid. Nothing here ever signals a node or dora.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from typing import Optional

# the watch's PID, in a follower's environment
ENV = "DORA_DOCTOR_WATCHER_PID"
PR_SET_PDEATHSIG = 1
CHECK_S = 0.5
# where the kernel signals the parent's death, the check only covers a parent that died
# before the prctl call (the first check, at once): then it runs this rarely (a follower
# wakes for nothing else while its dataflow is idle; bench/watch_cost.py)
ARMED_CHECK_S = 10.0


def set_parent_death_signal(sig: int) -> bool:
    """Ask Linux for ``sig`` when the parent dies; False where that cannot be asked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def watcher_pid() -> Optional[int]:
    """The watch that started this process, if one did (the environment says so)."""
    try:
        pid = int(os.environ.get(ENV, ""))
    except ValueError:
        return None
    return pid if pid > 1 else None


def follow_parent(parent: int, sig: int = signal.SIGINT) -> threading.Thread:
    """End this process (with ``sig``, once) when ``parent`` is no longer its parent."""
    every = ARMED_CHECK_S if set_parent_death_signal(sig) else CHECK_S

    def check() -> None:
        while os.getppid() == parent:
            threading.Event().wait(every)
        os.kill(os.getpid(), sig)

    thread = threading.Thread(target=check, name="lifeline", daemon=True)
    thread.start()
    return thread


def follow_watcher_from_env() -> Optional[threading.Thread]:
    """In a follower: end with the watch that started it (nothing when run by a person)."""
    parent = watcher_pid()
    return follow_parent(parent) if parent is not None else None
