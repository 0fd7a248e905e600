"""Read the facts dora writes about a stop out of its log lines.

Two steps. First a line is taken out of its *envelope* (:func:`parse_record`): whatever dora, or
the system logger in front of it, wrapped around the message. Then the message is matched
against a table of small, named patterns (``MESSAGE_PATTERNS``), each with a real line from a
real run (``tests/fixtures/dora-*/``) and the dora version it came from. Lines that match
nothing are not errors: most of a log is about something else, and no line ever raises.

Envelopes, tried in this order (ANSI colour codes and a trailing ``\\r`` are removed first):

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

Event kinds (``LogEvent.kind``):

- ``STOP_REQUEST``: a stop was asked for (coordinator's "sent stop", ``dora run``'s
  ``--stop-after`` or Ctrl-C, or dora-doctor's own ``dora stop``);
- ``NODE_EXIT``: dora saw the node end with a signal or a non-zero exit code;
- ``GRACE_KILL``: the daemon's own line: it SIGKILLed the node for not stopping within the
  grace; ``seconds`` is the kill point (1.5 × grace on dora ≥ 0.4, the grace on 0.3.x);
- ``KILLED``: the CLI's verdict on the same fact, ``node was killed by dora because it didn't
  react to a stop message in time (SIGKILL)``: ``signal`` 9, no seconds. Kept apart from
  ``GRACE_KILL`` so that reading both the daemon log and the CLI output does not count one
  kill twice; it is also what makes dora call the dataflow failed;
- ``NODE_FINISHED``: dora counted the node's end as a success. On dora 1.x that includes a
  SIGTERM during a planned stop (``treating as clean``), so read it with the ``NODE_EXIT``
  that comes before it: it does not mean the node's own cleanup ran;
- ``DROP_TOKEN``: a drop-token reply could not be sent (0.3.x logs one for every node it
  SIGKILLs, as the node's drop-token request dies with it);
- ``DATAFLOW_END``: the dataflow (or ``dora run``'s daemon) finished; the only end marker for
  nodes that exit cleanly under a detached ``dora start``.
- ``DAEMON_GONE`` / ``COORDINATOR_GONE``: not parsed from a line; ``inspect`` saw the
  daemon's or coordinator's process end while it watched (a crash or a kill leaves no line).
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

STOP_REQUEST = "stop-request"  # the coordinator sent STOP (or dora-doctor asked for it)
NODE_EXIT = "node-exit"  # dora saw the node end with a signal or an exit code
GRACE_KILL = "grace-kill"  # dora killed the node for not stopping within the grace period
KILLED = "killed"  # the CLI says dora SIGKILLed the node for not reacting to STOP in time
NODE_FINISHED = "node-finished"  # dora counted the node's end as a success
DROP_TOKEN = "drop-token"  # a drop-token reply to a node failed (0.3.x, after a SIGKILL)
DATAFLOW_END = "dataflow-end"  # the dataflow, or `dora run`'s daemon, finished
# Not from a log line: dora-doctor saw the process of dora's daemon or coordinator vanish
# while it watched (source "dora-doctor"; nothing else records a SIGKILLed daemon's end)
DAEMON_GONE = "daemon-gone"
COORDINATOR_GONE = "coordinator-gone"


@dataclass
class LogEvent:
    """One fact from a log line; ``time`` is Unix seconds (UTC), None if the line had none.

    ``clock`` is the time of day (``HH:MM:SS``, local time) of a line that carries no date,
    such as the dora CLI's; ``level`` is the line's log level as written (``INFO``, ``warn``…).
    """

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
    clock: Optional[str] = None
    level: Optional[str] = None
    machine: Optional[str] = None  # dora's machine id the fact is about, when known


@dataclass(frozen=True)
class MessagePattern:
    name: str
    kind: str
    regex: "re.Pattern[str]"
    example: str  # a real line's message, with the dora version it came from
    version: str


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_NODE = r"[\w./-]+"

MESSAGE_PATTERNS: List[MessagePattern] = [
    MessagePattern(
        "stop-sent",
        STOP_REQUEST,
        re.compile(r"successfully send stop dataflow `(?P<dataflow>[0-9a-fA-F-]{8,})`"),
        "successfully send stop dataflow `01a21300-a9d7-7fbb-8f73-fafe56868a8d` to all daemons",
        "1.1.0",
    ),
    MessagePattern(
        "stop-after",
        STOP_REQUEST,
        re.compile(r"stop-after timeout reached \(\S+\) -> stopping dataflow"),
        "stop-after timeout reached (3s) -> stopping dataflow",
        "1.1.0",
    ),
    MessagePattern(
        "stop-ctrlc",
        STOP_REQUEST,
        re.compile(r"received ctrlc signal -> stopping all dataflows"),
        "received ctrlc signal -> stopping all dataflows",
        "0.3.13",
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
        re.compile(r"node exited with error: ExitCode\((?P<exit_code>-?\d+)\)"),
        "node exited with error: ExitCode(1)",
        "1.1.0",
    ),
    MessagePattern(
        "planned-stop-signal",
        NODE_EXIT,
        re.compile(
            rf"`(?P<node>{_NODE})` exited with Signal\((?P<signal>\d+)\) during planned stop"
        ),
        "`crunch` exited with Signal(15) during planned stop; treating as clean",
        "1.1.0",
    ),
    MessagePattern(
        "exit-status-signal",
        NODE_EXIT,
        re.compile(r"handling node stop with exit status Signal\((?P<signal>\d+)\)"),
        "handling node stop with exit status Signal(9)",
        "0.3.13",
    ),
    MessagePattern(
        "exit-status-code",
        NODE_EXIT,
        re.compile(r"handling node stop with exit status ExitCode\((?P<exit_code>-?\d+)\)"),
        "handling node stop with exit status ExitCode(1) (restart: false, restart_count: 0)",
        "1.1.0",
    ),
    MessagePattern(
        "exit-status-success",
        NODE_FINISHED,
        re.compile(r"handling node stop with exit status Success\b"),
        "handling node stop with exit status Success (restart: false, restart_count: 0)",
        "1.1.0",
    ),
    MessagePattern(
        "exited-with-code",
        NODE_EXIT,
        re.compile(rf"(?:Node `(?P<node>{_NODE})` failed: )?exited with code (?P<exit_code>-?\d+)"),
        "Node `raiser` failed: exited with code 1 with stderr output:",
        "1.1.0",
    ),
    MessagePattern(
        "grace-kill",
        GRACE_KILL,
        re.compile(
            rf"(?<![\w./-])(?P<node>{_NODE}) was killed due to not stopping within the "
            r"(?P<seconds>\d+(?:\.\d+)?)s grace period"
        ),
        "sleeper was killed due to not stopping within the 3s grace period",
        "1.1.0",
    ),
    MessagePattern(
        "killed-no-reaction",
        KILLED,
        re.compile(
            rf"(?:Node `(?P<node>{_NODE})` failed: )?node was killed by dora because it "
            r"didn't react to a stop message in time \((?P<signame>SIG[A-Z]+)\)"
        ),
        "Node `sleeper` failed: node was killed by dora because it didn't react to a stop "
        "message in time (SIGKILL)",
        "1.1.0",
    ),
    MessagePattern(
        "finished",
        NODE_FINISHED,
        re.compile(rf"(?<![\w./-])(?P<node>{_NODE}) finished successfully"),
        "talker finished successfully",
        "1.1.0",
    ),
    MessagePattern(
        "drop-token-reply",
        DROP_TOKEN,
        re.compile(r"failed to send (?P<request>\w*DropTokens) reply"),
        "failed to send NextFinishedDropTokens reply: NextDropEvents([])",
        "0.3.13",
    ),
    MessagePattern(
        "dataflow-removed",
        DATAFLOW_END,
        re.compile(rf"removed machine id: \S+ from dataflow: (?P<dataflow>{_UUID})"),
        "removed machine id: 01a21300-a916-7306-a2c9-1f40ae513856 from dataflow: "
        "01a21300-a9d7-7fbb-8f73-fafe56868a8d",
        "1.1.0",
    ),
    MessagePattern(
        "daemon-exiting",
        DATAFLOW_END,
        re.compile(r"exiting daemon because all required dataflows are finished"),
        "exiting daemon because all required dataflows are finished",
        "1.1.0",
    ),
]

# Every line a pattern above (or parse_lines' context rules) can use contains one of these
# short literal anchors. A post-mortem first finds them in raw bytes with bytes.find (one
# fast pass per anchor, in C) and parses only the lines around them; tests check that every
# pattern's example line holds an anchor. Fewer, shorter anchors mean fewer passes.
CANDIDATE_ANCHORS = (
    b"stop",  # stop requests, planned stops, stop messages, "not stopping within … grace"
    b"exit",  # node exited, exit status, exited with code, exiting daemon
    b"finished",
    b"DropTokens",
    b"failed",  # "Dataflow … failed:", "failed to send reply to node"
    b"from dataflow:",
)


# Signal names dora writes, as numbers (Linux, where dora's stop ladder sends them).
_SIGNALS = {"SIGHUP": 1, "SIGINT": 2, "SIGKILL": 9, "SIGSEGV": 11, "SIGTERM": 15}

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


def match_message(message: str) -> Optional[Tuple[MessagePattern, "re.Match[str]"]]:
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
    clock: Optional[str] = None,
    level: Optional[str] = None,
) -> Optional[LogEvent]:
    """Match one message against the table and fill what the pattern captured."""
    hit = match_message(message)
    if hit is None:
        return None
    pattern, found = hit
    groups: Dict[str, Any] = found.groupdict()
    signal = _int(groups.get("signal"))
    if signal is None and groups.get("signame"):
        signal = _SIGNALS.get(str(groups["signame"]))
    return LogEvent(
        kind=pattern.kind,
        time=time,
        dataflow=groups.get("dataflow") or dataflow,
        node=groups.get("node") or node,
        signal=signal,
        exit_code=_int(groups.get("exit_code")),
        seconds=float(groups["seconds"]) if groups.get("seconds") else None,
        source=source,
        pattern=pattern.name,
        text=message.strip(),
        clock=clock,
        level=level,
    )


# --- envelopes ------------------------------------------------------------------------------


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


# --- lines to events ------------------------------------------------------------------------


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


def _int(value: object) -> Optional[int]:
    return int(str(value)) if value is not None else None


def _str(value: object) -> Optional[str]:
    return str(value) if value else None
