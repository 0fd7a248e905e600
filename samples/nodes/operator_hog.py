"""A Python operator whose ``on_event`` runs one long C call: the runtime cannot stop it.

On its first input the operator builds a lookup index with ``sum(range(...))`` style work (one
C call of minutes, holding the GIL) inside the runtime process. The runtime's own frame shows as
``<module> (<string>:1)``; the code at fault is this operator's.

Right answer (``--grace-duration 2s``): no reaction to STOP, terminated by SIGTERM at ~2 s; the
GIL holder is the operator ``hog``'s ``build_index`` (this file), not ``<string>:1``.
"""

from dora import DoraStatus

N = 10**10


def build_index() -> int:
    return sum(range(N))


class Operator:
    def on_event(self, dora_event: dict, send_output) -> DoraStatus:
        if dora_event["type"] == "INPUT":
            build_index()
        return DoraStatus.CONTINUE
