"""A well-behaved Python operator, run inside dora's runtime process.

dora starts ``python -c "import dora; dora.start_runtime()"`` for a node made of operators; the
runtime calls ``Operator.on_event`` for each event. This one counts ticks and returns at once.

Right answer: the node (one runtime process) is found and named as an operator node; clean
within ~0.1 s of the stop, cause none.
"""

from dora import DoraStatus


class Operator:
    def __init__(self) -> None:
        self.ticks = 0

    def on_event(self, dora_event: dict, send_output) -> DoraStatus:
        if dora_event["type"] == "INPUT":
            self.ticks += 1
        return DoraStatus.CONTINUE
