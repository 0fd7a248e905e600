"""A SIGTERM handler that does NOT delay the exit; the node never reads STOP.

The main thread polls a job queue with ``time.sleep(0.2)`` forever after its first input, so it
never returns to the event loop. Its SIGTERM handler ``on_sigterm`` closes a file and exits at
once (``sys.exit(0)``).

Right answer (``--grace-duration 2s``): no reaction to STOP; ended by dora's SIGTERM at ~2 s
(exit status 0 through the handler): the handler exists (SigCgt) and did not delay the exit;
the fix is to read STOP, in ``poll_jobs`` (this file).
"""

import signal
import sys
import tempfile
import time
from types import FrameType
from typing import Optional

from dora import Node

JOURNAL = tempfile.TemporaryFile()


def on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    JOURNAL.close()
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
