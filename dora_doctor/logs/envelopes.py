"""Take a log line out of its envelope: whatever dora, or the system logger in front of it,
wrapped around the message. No line ever raises; a line in no known envelope is a bare message.

Envelopes, tried in this order (ANSI colour codes and a trailing ``\r`` are removed first):

- JSON lines: dora ≥ 0.4's ``out/dora-coordinator.txt`` / ``out/dora-daemon.txt``
  (``{"timestamp", "level", "fields": {"message"}, "target", "span": {"dataflow_id",
  "node_id"}}``) and node logs ``out/<uuid>/log_<node>.jsonl`` (``{"ts", "level", "node",
  "stream", "msg", "target", "fields"}``, where ``msg`` may itself be a JSON tracing line);
- tracing text: ``2026-11-25T14:11:25.693750Z  WARN span{…}: target: message`` (0.3.x's
  ``out/dora-*.txt``, and the daemon lines that ``dora run`` prints between its own);
- dora CLI lines with a local time of day: ``14:05:56 INFO   crunch: daemon message``
  (1.x ``dora run`` / ``dora start --attach``); the time of day is kept as ``clock`` and
  ``time`` stays None, since the line has no date;
- a syslog or journald prefix (``Nov 25 13:59:06 host dora[123]: …``, or with an ISO time)
  in front of any of these;
- dora CLI lines without a time: ``crunch: ERROR  daemon    message`` (0.3.x), and 1.x's
  build-phase ``listener: DEBUG    building node``;
- anything else is a bare message, e.g. a line of the CLI's multi-line ``[ERROR]`` block.

"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from dora_doctor.logs.patterns import _UUID

_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d\d)-(?P<d>\d\d)[T ](?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)(?P<frac>\.\d+)?"
    r"(?P<tz>Z|[+-]\d\d:?\d\d)?"
)


def parse_timestamp(text: str) -> Optional[float]:
    """ISO 8601 (dora's ``2026-11-25T13:59:06.421350Z``) to Unix seconds; naive means UTC."""
    match = _ISO.search(text)
    if not match:
        return None
    try:
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
    except (ValueError, OverflowError):
        return None
    value = seconds + (float(match["frac"]) if match["frac"] else 0.0)
    tz = match["tz"]
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        value -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return value


@dataclass
class LogRecord:
    """A line taken out of its envelope: the message and what the envelope said about it."""

    message: str
    envelope: str  # "json", "node-json", "tracing", "cli", "cli-plain" or "bare"
    time: Optional[float] = None
    clock: Optional[str] = None
    level: Optional[str] = None
    dataflow: Optional[str] = None
    node: Optional[str] = None
    target: Optional[str] = None


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


_LEVEL = r"TRACE|DEBUG|INFO|WARN|ERROR"


_TRACING = re.compile(
    r"^(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    rf"\s+(?P<level>{_LEVEL})\s+(?P<rest>.*)$"
)


_CLI_CLOCK = re.compile(
    rf"^(?P<clock>\d\d:\d\d:\d\d(?:\.\d+)?) (?P<level>{_LEVEL}|stdout)\s+"
    r"(?P<node>\[dora\]|[^\s:]+): ?(?P<message>.*)$"
)


_CLI_PLAIN = re.compile(
    rf"^(?:(?P<node>\[dora\]|[^\s:`]+): )?(?P<level>{_LEVEL}|stdout)(?: +(?P<message>.*))?$"
)


_SYSLOG = re.compile(
    r"^(?:<\d{1,3}>\d?\s*)?"
    r"(?P<stamp>[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r" +(?P<host>\S+) +(?P<ident>[\w.@/-]+)(?:\[(?P<pid>\d+)\])?: (?P<rest>.*)$"
)


_CLOCK_IN = re.compile(r"\d\d:\d\d:\d\d(?:\.\d+)?")


_SEGMENT = re.compile(r"[A-Za-z_]\w*(?:::[A-Za-z_]\w*)*")


_FIELD_DATAFLOW = re.compile(rf"\bdataflow_id=(?P<v>{_UUID})")


_FIELD_NODE = re.compile(r"\bnode_id=(?P<v>[\w./-]+)")


# the 0.3.x daemon's plain-text target and message are set apart by a run of spaces
_TARGET_GAP = re.compile(r"^(?P<target>[\w:\[\]]+(?: [\w:\[\]]+)?) {2,}(?P<message>.*)$")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves, OSC titles)."""
    return _ANSI.sub("", text)


def parse_record(line: str) -> Optional[LogRecord]:
    """Take one line out of its envelope; None for an empty line. Never raises."""
    try:
        text = strip_ansi(line).strip()
        if not text:
            return None
        return _parse_envelope(text, syslog=True)
    except Exception:  # a malformed line is not the caller's problem
        return None


def _parse_envelope(text: str, syslog: bool) -> Optional[LogRecord]:
    if text.startswith("{"):  # a JSON line, or a broken one: never read as plain text
        return _json_record(text)
    found = _TRACING.match(text)
    if found:
        return _tracing_record(found)
    found = _CLI_CLOCK.match(text)
    if found:
        return LogRecord(
            message=found["message"],
            envelope="cli",
            clock=found["clock"],
            level=found["level"],
            node=_cli_node(found["node"]),
        )
    if syslog:
        found = _SYSLOG.match(text)
        if found and found["host"] not in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR"):
            inner = _parse_envelope(found["rest"].strip(), syslog=False)
            if inner is None:  # a broken JSON line behind the prefix
                return None
            if inner.time is None:
                stamp = found["stamp"]
                if stamp[0].isdigit():
                    inner.time = parse_timestamp(stamp)
                elif inner.clock is None:
                    clock = _CLOCK_IN.search(stamp)
                    inner.clock = clock.group(0) if clock else None
            return inner
    found = _CLI_PLAIN.match(text)
    if found:
        message = found["message"] or ""
        gap = _TARGET_GAP.match(message)
        return LogRecord(
            message=gap["message"] if gap else message,
            envelope="cli-plain",
            level=found["level"],
            node=_cli_node(found["node"]),
            target=gap["target"] if gap else None,
        )
    return LogRecord(message=text, envelope="bare")


def _json_record(text: str) -> Optional[LogRecord]:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    fields = record.get("fields")
    message: Any = fields.get("message") if isinstance(fields, dict) else None
    if not isinstance(message, str):
        message = record.get("msg")
    if not isinstance(message, str):
        return None
    span_value = record.get("span")
    span: Dict[str, Any] = span_value if isinstance(span_value, dict) else {}
    timestamp = record.get("timestamp") or record.get("ts")
    level = record.get("level")
    target = record.get("target")
    out = LogRecord(
        message=message,
        envelope="node-json" if "ts" in record or "msg" in record else "json",
        time=parse_timestamp(timestamp) if isinstance(timestamp, str) else None,
        level=level if isinstance(level, str) else None,
        dataflow=_str(span.get("dataflow_id")),
        node=_str(span.get("node_id")) or _str(record.get("node")),
        target=target if isinstance(target, str) else None,
    )
    inner_text = message.strip()
    if out.envelope == "node-json" and inner_text.startswith("{"):
        # a node log line whose message is the node's own JSON tracing line
        inner = _json_record(inner_text)
        if inner is not None:
            inner.envelope = "node-json"
            inner.time = inner.time if inner.time is not None else out.time
            inner.node = inner.node or out.node
            return inner
    return out


def _tracing_record(found: "re.Match[str]") -> LogRecord:
    rest = found["rest"]
    target, message = _split_spans(rest)
    dataflow = _FIELD_DATAFLOW.search(rest)
    node = _FIELD_NODE.search(rest)
    return LogRecord(
        message=message,
        envelope="tracing",
        time=parse_timestamp(found["stamp"]),
        level=found["level"],
        dataflow=dataflow["v"] if dataflow else None,
        node=node["v"] if node else None,
        target=target,
    )


def _split_spans(rest: str) -> Tuple[Optional[str], str]:
    """``span{fields}: span: target: message`` → (target, message).

    tracing's text format puts the active spans (with their fields in braces, which may nest)
    and then the target in front of the message, each followed by ``": "``.
    """
    pos = 0
    target: Optional[str] = None
    while True:
        found = _SEGMENT.match(rest, pos)
        if not found:
            break
        end = found.end()
        if end < len(rest) and rest[end] == "{":
            close = _closing_brace(rest, end)
            if close < 0:
                break
            end = close + 1
        if not rest.startswith(": ", end):
            break
        target = found.group(0)
        pos = end + 2
    return target, rest[pos:]


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    quoted = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _cli_node(value: Optional[str]) -> Optional[str]:
    return None if not value or value == "[dora]" else value


def _str(value: object) -> Optional[str]:
    return str(value) if value else None
