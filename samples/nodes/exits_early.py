"""A node that ends on its own after ~3 s, while the rest of the dataflow keeps running.

It reads timer inputs and returns once 3 s have passed since its start, exiting 0. A sampler
attached to it loses its target mid-run ("process exited"), which dora-doctor must handle.

dora-doctor should find: the node was gone before the stop request (exited by itself, code
0), so it is no stop problem; not an error of the tool.
"""

import time

from dora import Node

RUN_SECONDS = 3.0


def main() -> None:
    node = Node()
    started = time.monotonic()
    for event in node:
        if event["type"] == "STOP":
            break
        if time.monotonic() - started >= RUN_SECONDS:
            break


if __name__ == "__main__":
    main()
