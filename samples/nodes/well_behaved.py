"""A well-behaved dora node: the baseline every other sample is compared with.

On each timer tick it sends a counter on its ``count`` output; inputs from another node are
just read. It breaks out of its event loop as soon as STOP arrives. Its main thread spends
nearly all its time inside ``node.next()``, which releases the GIL, so STOP is seen at once.

dora-doctor should find: reacted to STOP within milliseconds, exited cleanly, no GIL holder,
nothing to fix.
"""

import pyarrow as pa
from dora import Node


def main() -> None:
    node = Node()
    count = 0
    for event in node:
        if event["type"] == "INPUT":
            if event["id"] == "tick":
                count += 1
                node.send_output("count", pa.array([count]))
            else:
                event["value"].to_pylist()
        elif event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
