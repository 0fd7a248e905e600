"""A non-daemon thread outlives STOP: the main loop ends, the process does not.

The node starts an ``uploader`` thread (``daemon=False``, the default) that polls for work
every 200 ms forever. On STOP the event loop breaks and ``main`` returns, but the interpreter's
shutdown (``threading._shutdown``) joins every non-daemon thread, and ``uploader`` never ends.

Right answer (``--grace-duration 2s``): reacted to STOP, then stuck in shutdown; terminated by
SIGTERM at ~2 s; the thread that keeps it alive is ``uploader`` in ``upload_forever`` (this
file), not ``threading.py``. Fix: ``daemon=True`` or a stop ``Event`` the thread checks.
"""

import threading
import time

from dora import Node


def upload_forever() -> None:
    while True:
        time.sleep(0.2)


def main() -> None:
    threading.Thread(target=upload_forever, name="uploader").start()
    node = Node()
    for event in node:
        if event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
