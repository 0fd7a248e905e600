"""``pyarrow.array`` over a list of Python dicts: the conversion keeps the GIL throughout.

The ``converter`` thread turns one million records (50 float fields each) into an Arrow
struct array, as a node does before ``send_output``. pyarrow must read every Python object,
so the whole conversion (~15-20 s here) is one call holding the GIL.

Right answer (``--grace-duration 2s``): terminated by SIGTERM at ~2 s, no reaction to STOP, GIL
holder thread ``converter`` in ``to_arrow`` (this file), inside pyarrow (``pyarrow.array``).
Fix: build columns with numpy (no per-object conversion) or convert in smaller batches.
"""

import threading

import pyarrow as pa
from dora import Node

RECORD = {f"field{i}": i * 0.5 for i in range(50)}
RECORDS = [RECORD] * 1_000_000


def to_arrow() -> int:
    return len(pa.array(RECORDS))


def convert_forever() -> None:
    while True:
        to_arrow()


def main() -> None:
    node = Node()
    threading.Thread(target=convert_forever, name="converter", daemon=True).start()
    for event in node:
        if event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
