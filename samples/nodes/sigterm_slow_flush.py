"""A SIGTERM handler that DOES delay the exit: ~6 s of pure-Python flushing, so SIGKILL comes.

As ``sigterm_quick_exit.py`` the main thread never reads STOP (it polls with short sleeps, so a
signal is handled within 0.2 s). Its SIGTERM handler ``on_sigterm`` calls ``flush_journal``,
a pure-Python loop of ~6 s; dora sends SIGKILL at 1.5 x grace.

Right answer (``--grace-duration 2s``): no reaction to STOP; killed by SIGKILL at ~3 s while in
``flush_journal`` (this file) called from the SIGTERM handler; ``dora stop`` fails. Fix: read
STOP; make the handler short.
"""

import signal
import sys
import time
from types import FrameType
from typing import Optional

from dora import Node


def flush_journal() -> int:
    total = 0
    deadline = time.monotonic() + 6.0
    while time.monotonic() < deadline:
        total += 1
    return total


def on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    flush_journal()
    sys.exit(0)


def poll_jobs() -> None:
    while True:
        time.sleep(0.2)


def main() -> None:
    signal.signal(signal.SIGTERM, on_sigterm)
    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            poll_jobs()
        elif event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
