"""A slow model load before ``Node()`` in a node that imported numpy and pyarrow first.

The way real nodes start: the framework is imported at the top (numpy starts a thread of its
own, pyarrow its ``jemalloc_bg_thd``), then ``main()`` builds the model before it connects to
dora. ``build_weights`` stands in for reading weights: numpy work in short steps. Until it
returns the process has not called ``Node()``, so STOP cannot reach it.

Right answer (``--grace-duration 2s``): still starting (not yet at ``Node()``), in
``build_weights`` (this file), N s since spawn; ends by SIGTERM at ~2 s. Not "stuck", not
"read events in the main loop". The threads numpy and pyarrow started are not dora's.
"""

import time

import numpy as np
import pyarrow as pa
from dora import Node


def build_weights() -> list:
    layers = []
    for step in range(6000):
        layers.append(pa.array(np.full(256, step, dtype=np.float32)))
        time.sleep(0.1)
    return layers


def main() -> None:
    weights = build_weights()
    node = Node()
    for event in node:
        if event["type"] == "STOP":
            break
    del weights


if __name__ == "__main__":
    main()
