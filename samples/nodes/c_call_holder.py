"""GIL contention: a worker thread in one long C-level call starves the event loop.

The ``cruncher`` thread loops over ``crunch_numbers``, whose ``sum(range(...))`` is a single
C call that never gives the GIL up while it runs (minutes here). The main thread is a correct
event loop that breaks on STOP, but it can only return from ``node.next()`` when it gets the
GIL back, which happens only between two calls: it never sees STOP (nor any input).

dora-doctor should find: at ``--grace-duration 2s`` the node does not react in time and ends
by SIGTERM (Signal(15)) at ~2 s; the GIL holder during the stop is thread ``cruncher`` in
``crunch_numbers`` (c_call_holder.py). Fix: release the GIL (numpy, chunking) or stop the
worker; more grace only helps if it outlasts a whole call.
"""

import threading

from dora import Node

# One call runs for minutes here (2 cores, CPython 3.11: 10**8 takes ~2 s), far longer than
# any grace period one would try, so a stop always lands in the middle of a call.
N = 10**10


def crunch_numbers() -> int:
    return sum(range(N))


def crunch_forever() -> None:
    while True:
        crunch_numbers()


def main() -> None:
    node = Node()
    threading.Thread(target=crunch_forever, name="cruncher", daemon=True).start()
    for event in node:
        if event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
