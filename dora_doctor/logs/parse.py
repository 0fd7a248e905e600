"""Read the facts dora writes about a stop out of its log lines.

Two steps. First a line is taken out of its *envelope* (:func:`parse_record`): whatever dora, or
the system logger in front of it, wrapped around the message. Then the message is matched
against a table of small, named patterns (``MESSAGE_PATTERNS``), each with a real line from a
real run (``tests/fixtures/dora-*/``) and the dora version it came from. Lines that match
nothing are not errors: most of a log is about something else, and no line ever raises.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator, Optional

from dora_doctor.logs.envelopes import LogRecord, _json_record, parse_record, strip_ansi
from dora_doctor.logs.events import DROP_TOKEN, LogEvent
from dora_doctor.logs.patterns import _NODE, _UUID, event_from_message


def parse_json_line(line: str, source: str = "") -> Optional[LogEvent]:
    """A JSON log line: dora ≥ 0.4's tracing line or a node log (``.jsonl``) line."""
    try:
        record = _json_record(strip_ansi(line).strip())
    except Exception:
        return None
    return _event(record, source) if record is not None else None


def parse_line(line: str, source: str = "") -> Optional[LogEvent]:
    """The event one line carries, whatever its envelope; None if it carries none."""
    record = parse_record(line)
    return _event(record, source) if record is not None else None


def _event(record: LogRecord, source: str) -> Optional[LogEvent]:
    return event_from_message(
        record.message,
        record.time,
        dataflow=record.dataflow,
        node=record.node,
        source=source,
        clock=record.clock,
        level=record.level,
    )


_BLOCK_DATAFLOW = re.compile(rf"^Dataflow (?P<dataflow>{_UUID}) failed:$")


_REPLY_TO_NODE = re.compile(rf"failed to send reply to node `(?P<node>{_NODE})`")


def parse_lines(lines: Iterable[str], source: str = "") -> Iterator[LogEvent]:
    """The events of consecutive lines, with what only the lines around them say.

    Two facts sit on other lines than the event's: the dataflow of a CLI ``[ERROR]`` block
    (``Dataflow <uuid> failed:`` above the ``Node `x` failed: …`` line) and the node of a
    0.3.x drop-token warning (``0: failed to send reply to node `x``` below it). An event is
    held back until the next event (or the end), so it is complete when yielded.
    """
    pending: Optional[LogEvent] = None
    block_dataflow: Optional[str] = None
    for line in lines:
        record = parse_record(line)
        if record is None:
            continue
        if record.envelope == "bare":
            header = _BLOCK_DATAFLOW.match(record.message)
            if header:
                block_dataflow = header["dataflow"]
                continue
            if pending is not None and pending.kind == DROP_TOKEN and pending.node is None:
                reply = _REPLY_TO_NODE.search(record.message)
                if reply:
                    pending.node = reply["node"]
                    continue
        else:
            block_dataflow = None
        event = _event(record, source)
        if event is None:
            continue
        if record.envelope == "bare" and event.dataflow is None:
            event.dataflow = block_dataflow
        if pending is not None:
            yield pending
        pending = event
    if pending is not None:
        yield pending
