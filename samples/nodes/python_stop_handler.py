"""A slow STOP handler in pure Python: the node reacts, but its cleanup outlasts the grace.

On STOP the main thread calls ``flush_state``, a pure-Python loop of about 4 s (it is busy,
holding the GIL between the interpreter's periodic switches), then exits.

dora-doctor should find: at ``--grace-duration 2s`` the node saw STOP but was terminated by
SIGTERM (Signal(15)) at ~2 s while in ``flush_state`` (python_stop_handler.py); at a grace of
~6 s or more it exits cleanly after ~4 s. Fix: grace >= ~6 s, or make the flush faster.
"""

import time

from dora import Node

FLUSH_SECONDS = 4.0


def flush_state() -> int:
    deadline = time.monotonic() + FLUSH_SECONDS
    total = 0
    while time.monotonic() < deadline:
        for i in range(10_000):
            total += i * i
    return total


def main() -> None:
    node = Node()
    for event in node:
        if event["type"] == "STOP":
            flush_state()
            break


if __name__ == "__main__":
    main()
