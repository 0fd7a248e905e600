"""A regex with catastrophic backtracking, run by a worker thread: one C call holds the GIL.

The ``validator`` thread checks a user name against ``(a+)+$`` (a nested quantifier) on an
input that almost matches: ``re`` backtracks exponentially inside one C call (``_sre``), which
never gives the GIL up. The event loop is correct but cannot get the GIL to see STOP.

Right answer (``--grace-duration 2s``, dora 1.x): terminated by SIGTERM at ~2 s, no reaction to
STOP, GIL holder thread ``validator`` in ``validate_username`` (this file), inside ``re.match``
(re/__init__.py). Fix the pattern (no nested quantifier), not the grace.
"""

import re
import threading

from dora import Node

# (a+)+$ on 27 'a's and a 'b' backtracks 2**27 times: ~40 s of one C call (CPython 3.11, 2 cores)
PATTERN = r"(a+)+$"
NAME = "a" * 27 + "b"


def validate_username(name: str) -> bool:
    return re.match(PATTERN, name) is not None


def validate_forever() -> None:
    while True:
        validate_username(NAME)


def main() -> None:
    node = Node()
    threading.Thread(target=validate_forever, name="validator", daemon=True).start()
    for event in node:
        if event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
