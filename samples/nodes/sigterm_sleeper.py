"""A SIGTERM handler that sleeps: dora's soft kill is swallowed, so dora escalates to SIGKILL.

The node installs a Python SIGTERM handler (``on_sigterm``) that sleeps for a long time, and
its main thread waits forever after the first input (in ``wait_forever``), never seeing STOP.
At the grace, dora sends SIGTERM; the handler runs and keeps sleeping; at 1.5 x grace dora
sends SIGKILL.

dora-doctor should find: no reaction to STOP; killed by SIGKILL (Signal(9)) at ~3 s for
``--grace-duration 2s``, having outlived the SIGTERM; dora reports the dataflow as failed.
The handler ``on_sigterm`` shows in the samples when the kernel delivers SIGTERM to the main
thread; delivered to another thread (dora's Rust threads), it never runs, since MainThread
stays blocked in its wait. Fix: make the SIGTERM handler exit quickly and handle STOP.
"""

import signal
import threading
import time
from types import FrameType
from typing import Optional

from dora import Node


def on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    time.sleep(3600)


def wait_forever() -> None:
    threading.Event().wait()


def main() -> None:
    signal.signal(signal.SIGTERM, on_sigterm)
    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            wait_forever()
        elif event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
