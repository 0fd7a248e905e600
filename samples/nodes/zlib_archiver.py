"""A worker compresses with ``zlib.compress``: C code that RELEASES the GIL while it deflates.

The ``archiver`` thread compresses 40 MB blocks back to back. CPython's zlib module drops the
GIL around ``deflate()``, so the event loop gets the GIL whenever it needs it and sees STOP at
once; the worker is a daemon thread and ends with the process.

Right answer: clean, within ~0.1 s, cause none, no GIL-holder blame (the archiver runs without
the GIL most of the time): a busy C worker is not a stop problem when it releases the GIL.
"""

import os
import threading
import zlib

from dora import Node

BLOCK = os.urandom(1 << 20) * 40


def archive_block() -> int:
    return len(zlib.compress(BLOCK, 9))


def archive_forever() -> None:
    while True:
        archive_block()


def main() -> None:
    node = Node()
    threading.Thread(target=archive_forever, name="archiver", daemon=True).start()
    for event in node:
        if event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
