"""On STOP, a checkpoint with ``pickle.dumps``: one C call that keeps the GIL past the grace.

The node keeps a million small records in memory. It reacts to STOP at once, then calls
``save_checkpoint``, whose ``pickle.dumps`` (the C pickler, no Python frame of its own) runs for
longer than the grace without releasing the GIL.

Right answer (``--grace-duration 2s``): reacted to STOP within milliseconds, then terminated by
SIGTERM at ~2 s while MainThread held the GIL in ``save_checkpoint`` (this file) inside the C
call ``pickle.dumps``; slow shutdown: a grace above the pickling time (~4-8 s here) helps, or a
smaller / incremental checkpoint.
"""

import pickle

from dora import Node


def build_state() -> list:
    return list(zip(map(float, range(1_000_000)), range(1_000_000)))


def save_checkpoint(state: list) -> int:
    return len(pickle.dumps(state))


def main() -> None:
    state = build_state()
    node = Node()
    for event in node:
        if event["type"] == "STOP":
            break
    # the checkpoint is written many times over (versions), all in C: ~0.4 s each on an idle
    # core, so the whole outlasts a 2 s grace on a fast machine too
    for _ in range(20):
        save_checkpoint(state)


if __name__ == "__main__":
    main()
