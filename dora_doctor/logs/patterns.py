"""The table of dora's log messages that matter for a stop: one small, named pattern per
message, each with a real line from a real run (``tests/fixtures/dora-*/``) and the dora
version it came from. Lines that match nothing are not errors: most of a log is about
something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from dora_doctor.logs.events import (
    DAEMON_LEFT,
    DATAFLOW_END,
    DROP_TOKEN,
    FINISH_DRAIN,
    GRACE_KILL,
    HEALTH_KILL,
    KILLED,
    NODE_EXIT,
    NODE_FINISHED,
    NODE_RESTART_REQUEST,
    NODE_STOP_REQUEST,
    STARTUP_KILL,
    STOP_REQUEST,
    LogEvent,
)


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
        "node-stopped",
        NODE_STOP_REQUEST,
        re.compile(
            rf"successfully stopped node `(?P<node>{_NODE})` in dataflow `(?P<dataflow>{_UUID})`"
        ),
        "successfully stopped node `deaf` in dataflow `01a23433-b281-7eb2-9c50-178ad3f4b34c`",
        "1.1.0",
    ),
    MessagePattern(
        "node-restarted",
        NODE_RESTART_REQUEST,
        re.compile(
            rf"successfully restarted node `(?P<node>{_NODE})` in dataflow "
            rf"`(?P<dataflow>{_UUID})`"
        ),
        "successfully restarted node `talker` in dataflow `01a23433-b281-7eb2-9c50-178ad3f4b34c`",
        "1.1.0",
    ),
    MessagePattern(
        "startup-timeout-kill",
        STARTUP_KILL,
        re.compile(
            rf"node `(?P<node>{_NODE})` failed to connect within (?P<seconds>\d+(?:\.\d+)?)s"
            r"\b.*killing"
        ),
        "node `stuck` failed to connect within 3s (elapsed: 5610ms), killing",
        "1.1.0",
    ),
    MessagePattern(
        "health-timeout-kill",
        HEALTH_KILL,
        re.compile(
            rf"node `(?P<node>{_NODE})` unresponsive for \d+ms "
            r"\(timeout: (?P<seconds>\d+(?:\.\d+)?)s\), killing"
        ),
        "node `deaf` unresponsive for 7712ms (timeout: 3s), killing",
        "1.1.0",
    ),
    MessagePattern(
        "finish-drain-escalation",
        FINISH_DRAIN,
        re.compile(
            rf"dataflow (?P<dataflow>{_UUID}) is finished except node `(?P<node>{_NODE})` "
            r"\(AllInputsClosed sent (?P<seconds>\d+(?:\.\d+)?)s ago\) \S+ escalating stop"
        ),
        "dataflow 01a23466-aca6-781d-9d9e-412212db2ad6 is finished except node `deaf` "
        "(AllInputsClosed sent 5s ago) — escalating stop (set DORA_FINISH_DRAIN_GRACE_SECS to "
        "adjust the grace period)",
        "1.1.0",
    ),
    MessagePattern(
        "daemon-exited",
        DAEMON_LEFT,
        # not "Daemon `X` exited": dora logs it at every ordinary `dora destroy`/`down` too
        re.compile(r"all daemons disconnected - entering reclaim window"),
        "all daemons disconnected - entering reclaim window (waiting for daemon reconnect)",
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
    b"restarted node",  # `dora node restart`
    b"disconnected",  # all daemons disconnected
    b"killing",  # startup and health-check kills
)


# Signal names dora writes, as numbers (Linux, where dora's stop ladder sends them).
_SIGNALS = {"SIGHUP": 1, "SIGINT": 2, "SIGKILL": 9, "SIGSEGV": 11, "SIGTERM": 15}


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


def _int(value: object) -> Optional[int]:
    """A signal or exit code; None for digits no process could return (int() refuses more
    than 4300 of them, and a log line may hold any number)."""
    if value is None or len(str(value)) > 20:
        return None
    return int(str(value))
