"""Read the facts dora writes about a stop out of its log lines.

One small, named pattern per kind of line (see ``MESSAGE_PATTERNS``), each tested on a real
line from a real run (``tests/fixtures/dora-*/``). A line is first taken out of its envelope
(dora ≥ 0.4 writes JSON lines with ``timestamp``, ``fields.message`` and a ``span`` naming the
dataflow and node) and its message is then matched against the table. Lines that match
nothing are not errors: most of a log is about something else.
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

STOP_REQUEST = "stop-request"  # the coordinator sent STOP (or dora-doctor asked for it)
NODE_EXIT = "node-exit"  # dora saw the node end with a signal or an exit code
GRACE_KILL = "grace-kill"  # dora killed the node for not stopping within the grace period


@dataclass
class LogEvent:
    """One fact from a log line; ``time`` is Unix seconds (UTC), None if the line had none."""

    kind: str
    time: Optional[float]
    dataflow: Optional[str] = None
    node: Optional[str] = None
    signal: Optional[int] = None
    exit_code: Optional[int] = None
    seconds: Optional[float] = None
    source: str = ""
    pattern: str = ""
    text: str = ""


@dataclass(frozen=True)
class MessagePattern:
    name: str
    kind: str
    regex: "re.Pattern[str]"
    example: str  # a real line's message, with the dora version it came from
    version: str


MESSAGE_PATTERNS: List[MessagePattern] = [
    MessagePattern(
        "stop-sent",
        STOP_REQUEST,
        re.compile(r"successfully send stop dataflow `(?P<dataflow>[0-9a-fA-F-]{8,})`"),
        "successfully send stop dataflow `01a21300-a9d7-7fbb-8f73-fafe56868a8d` to all daemons",
        "1.1.0",
    ),
    MessagePattern(
        "exit-signal",
        NODE_EXIT,
        re.compile(r"node exited with error: Signal\((?P<signal>\d+)\)"),
        "node exited with error: Signal(15)",
        "1.1.0",
    ),
    MessagePattern(
        "exit-code",
        NODE_EXIT,
        re.compile(r"node exited with error: exit (?:status|code):? ?(?P<exit_code>-?\d+)"),
        "node exited with error: exit status: 1",
        "1.1.0",
    ),
    MessagePattern(
        "grace-kill",
        GRACE_KILL,
        re.compile(
            r"(?P<node>[\w./-]+) was killed due to not stopping within the "
            r"(?P<seconds>\d+(?:\.\d+)?)s grace period"
        ),
        "sleeper was killed due to not stopping within the 3s grace period",
        "1.1.0",
    ),
]

_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d\d)-(?P<d>\d\d)[T ](?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)(?P<frac>\.\d+)?"
    r"(?P<tz>Z|[+-]\d\d:?\d\d)?"
)


def parse_timestamp(text: str) -> Optional[float]:
    """ISO 8601 (dora's ``2026-11-25T13:59:06.421350Z``) to Unix seconds; naive means UTC."""
    match = _ISO.search(text)
    if not match:
        return None
    seconds = calendar.timegm(
        (
            int(match["y"]),
            int(match["mo"]),
            int(match["d"]),
            int(match["h"]),
            int(match["mi"]),
            int(match["s"]),
            0,
            0,
            0,
        )
    )
    value = seconds + (float(match["frac"]) if match["frac"] else 0.0)
    tz = match["tz"]
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        value -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return value


def match_message(message: str) -> Optional[tuple[MessagePattern, "re.Match[str]"]]:
    for pattern in MESSAGE_PATTERNS:
        found = pattern.regex.search(message)
        if found:
            return pattern, found
    return None


def event_from_message(
    message: str,
    time: Optional[float],
    dataflow: Optional[str] = None,
    node: Optional[str] = None,
    source: str = "",
) -> Optional[LogEvent]:
    """Match one message against the table and fill what the pattern captured."""
    hit = match_message(message)
    if hit is None:
        return None
    pattern, found = hit
    groups: Dict[str, Any] = found.groupdict()
    return LogEvent(
        kind=pattern.kind,
        time=time,
        dataflow=groups.get("dataflow") or dataflow,
        node=groups.get("node") or node,
        signal=_int(groups.get("signal")),
        exit_code=_int(groups.get("exit_code")),
        seconds=float(groups["seconds"]) if groups.get("seconds") else None,
        source=source,
        pattern=pattern.name,
        text=message.strip(),
    )


def parse_json_line(line: str, source: str = "") -> Optional[LogEvent]:
    """A dora ≥ 0.4 tracing line: ``{"timestamp", "level", "fields": {"message"}, "span"}``."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    fields = record.get("fields")
    message = fields.get("message") if isinstance(fields, dict) else record.get("msg")
    if not isinstance(message, str):
        return None
    span_value = record.get("span")
    span: Dict[str, Any] = span_value if isinstance(span_value, dict) else {}
    timestamp = record.get("timestamp") or record.get("ts")
    return event_from_message(
        message,
        parse_timestamp(timestamp) if isinstance(timestamp, str) else None,
        dataflow=_str(span.get("dataflow_id")),
        node=_str(span.get("node_id")) or _str(record.get("node")),
        source=source,
    )


LineParser = Callable[[str, str], Optional[LogEvent]]


def parse_line(line: str, source: str = "") -> Optional[LogEvent]:
    stripped = line.strip()
    if stripped.startswith("{"):
        return parse_json_line(stripped, source)
    return None


def parse_lines(lines: Iterable[str], source: str = "") -> Iterator[LogEvent]:
    for line in lines:
        event = parse_line(line, source)
        if event is not None:
            yield event


def _int(value: object) -> Optional[int]:
    return int(str(value)) if value is not None else None


def _str(value: object) -> Optional[str]:
    return str(value) if value else None
