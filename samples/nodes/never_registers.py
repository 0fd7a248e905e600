"""A peer that never registers: it blocks before ``Node()`` forever.

Stands in for a node stuck in its own start-up (a device that never appears, a lock, a
download): it waits on an ``Event`` nobody sets, before connecting to dora. dora starts a
dataflow only once every node has registered, so every other node of the dataflow waits in its
own ``Node()``.

Right answer: this node is still starting (in ``wait_for_device``, this file); STOP cannot
reach it; terminated by SIGTERM at the grace. Its peers are victims (see ``victim.yml``).
"""

import threading

from dora import Node


def wait_for_device() -> None:
    threading.Event().wait()


def main() -> None:
    wait_for_device()
    node = Node()
    for event in node:
        if event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
