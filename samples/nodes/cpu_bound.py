"""A CPU-bound node whose throughput can be read from outside, for the overhead benchmark.

The ``counter`` thread runs pure Python flat out (it holds the GIL nearly all the time, as a
busy real node does) and, every 100 ms, appends one line ``END_WALL_TIME ITERATIONS SECONDS``
to the file named by ``CPU_BOUND_OUT``: iterations per bucket are the node's throughput, so a
sampler's cost shows up as fewer iterations per second while it runs. Without
``CPU_BOUND_OUT`` it prints iterations/s once a second to its log instead. The main thread
is a correct event loop that breaks on STOP, and the counter ends with it, so the node stops
well (it loses the GIL to the counter for at most the switch interval, 5 ms).

dora-doctor should find: clean, within ~0.1 s; the GIL held by ``counter`` in ``count``
nearly all the time; nothing to fix.
"""

import os
import sys
import threading
import time
from typing import IO, Optional

from dora import Node

BUCKET_S = 0.1
CHUNK = 2_000  # iterations between two clock reads: ~0.1 ms, so buckets end on time


def count(stop: threading.Event, out: Optional[IO[str]]) -> None:
    started = time.time()
    bucket_start = time.perf_counter()
    iterations = 0
    printed = started
    per_second = 0
    total = 0
    while not stop.is_set():
        for _ in range(CHUNK):
            total += 1
        iterations += CHUNK
        now = time.perf_counter()
        if now - bucket_start >= BUCKET_S:
            wall = time.time()
            if out is not None:
                out.write(f"{wall:.6f} {iterations} {now - bucket_start:.6f}\n")
                out.flush()
            else:
                per_second += iterations
                if wall - printed >= 1.0:
                    print(f"{per_second / (wall - printed):.0f} iterations/s", flush=True)
                    printed, per_second = wall, 0
            bucket_start, iterations = now, 0


def main() -> None:
    path = os.environ.get("CPU_BOUND_OUT")
    out = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
    stop = threading.Event()
    counter = threading.Thread(target=count, args=(stop, out), name="counter", daemon=True)
    node = Node()
    counter.start()
    for event in node:
        if event["type"] == "STOP":
            break
    stop.set()
    counter.join()
    if out is not None:
        out.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
