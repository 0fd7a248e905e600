"""``json.dumps`` of a large object in a worker thread: the C encoder keeps the GIL.

The ``exporter`` thread serialises 150 000 frames of 100 floats (~300 MB of text) in one
``json.dumps`` call: CPython's C encoder (``c_make_encoder``) runs the whole object without
releasing the GIL (~20 s here), so the event loop never sees STOP.

Right answer (``--grace-duration 2s``): terminated by SIGTERM at ~2 s, no reaction to STOP, GIL
holder thread ``exporter`` in ``export_frames`` (this file), inside ``JSONEncoder.iterencode``
(json/encoder.py). Fix: stream it (``json.dump`` to a file in chunks) or export in a process.
"""

import json
import threading

from dora import Node

FRAME = [1 / 3] * 100
FRAMES = [FRAME] * 150_000  # one list object repeated: little memory, a long encode


def export_frames() -> int:
    return len(json.dumps({"frames": FRAMES}))


def export_forever() -> None:
    while True:
        export_frames()


def main() -> None:
    node = Node()
    threading.Thread(target=export_forever, name="exporter", daemon=True).start()
    for event in node:
        if event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
