"""Logging through a ``QueueListener``: a library thread that stops when asked.

The node logs every input through a ``logging.handlers.QueueHandler``; the stdlib's
``QueueListener`` thread writes the records out. On STOP the node breaks out of its loop and
calls ``listener.stop()``, which drains the queue and joins the thread.

Right answer: clean, within ~0.1 s, cause none; the listener thread is not blamed.
"""

import logging
import logging.handlers
import queue

from dora import Node


def main() -> None:
    records: "queue.Queue[logging.LogRecord]" = queue.Queue()
    listener = logging.handlers.QueueListener(records, logging.StreamHandler())
    listener.start()
    log = logging.getLogger("queue_listener")
    log.addHandler(logging.handlers.QueueHandler(records))
    log.setLevel(logging.INFO)
    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            log.info("input %s", event["id"])
        elif event["type"] == "STOP":
            break
    listener.stop()


if __name__ == "__main__":
    main()
