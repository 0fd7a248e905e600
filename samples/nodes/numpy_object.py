"""numpy on ``dtype=object``: a matrix product that holds the GIL for every element.

The ``solver`` thread multiplies 500 x 500 matrices of Python ints (exact arithmetic, as one
does for rationals or big integers). numpy releases the GIL for numeric dtypes but must keep it
for object arrays: ``A @ A`` is one C call of ~20 s that never lets the event loop run.

Right answer (``--grace-duration 2s``): terminated by SIGTERM at ~2 s, no reaction to STOP, GIL
holder thread ``solver`` in ``propagate`` (this file), a numpy call (no Python frame of numpy's
own). Fix: a numeric dtype (releases the GIL), smaller blocks, or a process.
"""

import threading

import numpy as np
from dora import Node

SIZE = 500


def propagate(matrix: "np.ndarray") -> "np.ndarray":
    return matrix @ matrix


def solve_forever() -> None:
    matrix = np.arange(SIZE * SIZE, dtype=object).reshape(SIZE, SIZE)
    while True:
        propagate(matrix)


def main() -> None:
    node = Node()
    threading.Thread(target=solve_forever, name="solver", daemon=True).start()
    for event in node:
        if event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
