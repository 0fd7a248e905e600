"""A slow model load before ``Node()``: the node is still starting when the stop comes.

``load_model`` stands in for importing a large framework and reading weights (minutes on a
cold disk): it sleeps in short steps. Until it returns, the process has not connected to dora,
so dora starts no node of the dataflow and STOP cannot reach this one.

Right answer (``--grace-duration 2s``): still starting (not yet at ``Node()``), in
``load_model`` (this file), for N s since spawn; STOP cannot reach a node before it connects;
ends by SIGTERM at ~2 s. Helps: stop after startup, or dora's ``startup_timeout``
(dora 1.1). Not "read events in the main loop", not "no grace period helps".
"""

import time

from dora import Node


def load_model() -> dict:
    weights = {}
    for step in range(6000):
        time.sleep(0.1)
        weights[step] = step
    return weights


def main() -> None:
    model = load_model()
    node = Node()
    for event in node:
        if event["type"] == "STOP":
            break
    del model


if __name__ == "__main__":
    main()
