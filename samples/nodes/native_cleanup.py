"""Slow cleanup in C code that releases the GIL: busy on a CPU, yet the GIL is free.

On STOP the main thread calls ``compress_state``, which feeds ~3 s of data through
``hashlib.sha256`` in 32 MiB blocks. hashlib releases the GIL while it hashes a large buffer,
like numpy, zlib or an image codec would, so no thread holds the GIL most of the time but
the main thread is running, not waiting.

dora-doctor should find: at ``--grace-duration 2s`` the node saw STOP but was terminated by
SIGTERM (Signal(15)) at ~2 s, in ``compress_state`` (native_cleanup.py), running native code
without the GIL; its lane shows "ran without the GIL". At a grace of 5 s it exits cleanly.
Fix: more grace, or less work at stop.
"""

import hashlib
import time

from dora import Node

WORK_SECONDS = 3.0
BLOCK = b"\x5a" * (32 * 1024 * 1024)


def compress_state() -> None:
    digest = hashlib.sha256()
    deadline = time.monotonic() + WORK_SECONDS
    while time.monotonic() < deadline:
        digest.update(BLOCK)  # releases the GIL for buffers over 2 KiB


def main() -> None:
    node = Node()
    for event in node:
        if event["type"] == "STOP":
            compress_state()
            break


if __name__ == "__main__":
    main()
