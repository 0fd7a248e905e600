"""A node that forks worker processes (``multiprocessing.Pool``) and waits for their results.

On its first input the node maps a batch over a 2-process pool (``fork``), each task sleeping
2 s (stands in for work done in the workers). ``pool.map`` waits without the GIL, but the main
thread never returns to the event loop while the batch runs (~30 s), so STOP is not read.

Right answer (``--grace-duration 2s``): no reaction to STOP, no GIL holder; terminated by
SIGTERM at ~2 s while MainThread waits in ``process_batch`` (this file) inside ``Pool.map``.
Fix: ``map_async`` and keep reading events, or smaller batches. The worker processes are not
dora nodes: they must not be reported as nodes. After the SIGTERM they are orphaned and end
when their task does (the pool's pipe is gone).
"""

import multiprocessing
import time

from dora import Node


def work(item: int) -> int:
    time.sleep(2)
    return item


def process_batch(pool: "multiprocessing.pool.Pool") -> int:
    return sum(pool.map(work, range(30), chunksize=1))


def main() -> None:
    pool = multiprocessing.get_context("fork").Pool(2)
    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            process_batch(pool)
        elif event["type"] == "STOP":
            break
    pool.terminate()


if __name__ == "__main__":
    main()
