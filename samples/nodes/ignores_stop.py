"""A node that never reads STOP: after its first input the main thread blocks for good.

It waits on a ``threading.Event`` that nobody sets (in ``wait_for_job``), so it never calls
``node.next()`` again and never sees STOP. No thread holds the GIL: more grace cannot help.

dora-doctor should find: no reaction to STOP; terminated by SIGTERM (Signal(15)) at the
grace, whatever its value; the main thread is idle in ``wait_for_job`` (ignores_stop.py).
Fix: the code (poll the event loop or use a timeout), not the grace.
"""

import threading

from dora import Node


def wait_for_job(job_done: threading.Event) -> None:
    job_done.wait()


def main() -> None:
    node = Node()
    job_done = threading.Event()
    for event in node:
        if event["type"] == "INPUT":
            wait_for_job(job_done)
        elif event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
