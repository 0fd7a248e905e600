"""A ``ThreadPoolExecutor`` job in pure Python: the node leaves its loop, the pool keeps it alive.

On its first input the node submits ``score_batch`` (a long pure-Python loop) to a
``concurrent.futures.ThreadPoolExecutor``. The event loop still gets the GIL (the interpreter
switches threads every 5 ms) and breaks on STOP, but at exit ``concurrent.futures`` joins its
worker threads (``threading._register_atexit``), and the worker is still scoring.

Right answer (``--grace-duration 2s``): reacted to STOP, then the process stays alive in
interpreter shutdown joining thread ``ThreadPoolExecutor-0_0``, busy in ``score_batch`` (this
file); terminated by SIGTERM at ~2 s. Fix: check a stop flag in ``score_batch`` or
``executor.shutdown(cancel_futures=True)`` plus a cooperative stop; more grace helps only past
the job's length.
"""

from concurrent.futures import ThreadPoolExecutor

from dora import Node


def score_batch(rounds: int) -> int:
    total = 0
    for i in range(rounds):
        total += i % 7
    return total


def main() -> None:
    node = Node()
    pool = ThreadPoolExecutor(max_workers=1)
    submitted = False
    for event in node:
        if event["type"] == "INPUT" and not submitted:
            pool.submit(score_batch, 10**10)
            submitted = True
        elif event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
