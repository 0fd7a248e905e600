"""Slow but GIL-free cleanup: the node reacts to STOP and then waits (I/O-like) too long.

On STOP the main thread calls ``save_to_disk``, which sleeps ~3 s (``time.sleep`` releases the
GIL, like waiting on a disk or a socket), then exits. No thread holds the GIL meanwhile.

dora-doctor should find: at ``--grace-duration 2s`` the node saw STOP but was terminated by
SIGTERM (Signal(15)) at ~2 s, idle in ``save_to_disk`` (slow_cleanup.py), no GIL holder; at a
grace of 5 s it exits cleanly after ~3 s. Fix: more grace (>= ~4-5 s) or faster cleanup.
"""

import time

from dora import Node

SAVE_SECONDS = 3.0


def save_to_disk() -> None:
    time.sleep(SAVE_SECONDS)


def main() -> None:
    node = Node()
    for event in node:
        if event["type"] == "STOP":
            save_to_disk()
            break


if __name__ == "__main__":
    main()
