"""Log-line parsing on lines captured from real dora runs (tests/fixtures/dora-*/*/README.md).

Every line a test parses is read from a fixture file; the few envelopes no run here produced
(journald, syslog, a node's JSON tracing line inside a node log) are built around real lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

from dora_doctor.logs import envelopes, parse, patterns
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

FIX = Path(__file__).parent / "fixtures"
V11 = "dora-1.1.0"
V03 = "dora-0.3.13"


def lines_of(rel: str) -> List[str]:
    return (FIX / rel).read_text(encoding="utf-8").splitlines()


def line_with(rel: str, text: str) -> str:
    """The first line of fixture ``rel`` that contains ``text`` once its colours are gone."""
    for line in lines_of(rel):
        if text in envelopes.strip_ansi(line):
            return line
    raise AssertionError(f"{text!r} not in {rel}")


def events_of(rel: str) -> List[LogEvent]:
    return list(parse.parse_lines(lines_of(rel), "test"))


def ts(text: str) -> float:
    value = envelopes.parse_timestamp(text)
    assert value is not None
    return value


# Short form of an event for whole-file comparisons: (kind, node, signal, exit code, seconds).
Brief = Tuple[str, Optional[str], Optional[int], Optional[int], Optional[float]]


def brief(events: Sequence[LogEvent]) -> List[Brief]:
    return [(e.kind, e.node, e.signal, e.exit_code, e.seconds) for e in events]


# --- one test per message pattern, on the real line its example was taken from ---------------

# pattern name -> (fixture file holding its example, fields the event from that line must have)
PATTERN_CASES: Dict[str, Tuple[str, Dict[str, object]]] = {
    "stop-sent": (
        f"{V11}/stop-grace-2s/dora-coordinator.txt",
        {
            "kind": STOP_REQUEST,
            "dataflow": "01a21300-a9d7-7fbb-8f73-fafe56868a8d",
            "time": ts("2026-11-25T13:59:04.408142Z"),
        },
    ),
    "stop-after": (
        f"{V11}/run-stop-after-3s/run-gil_contention.stdout.txt",
        {"kind": STOP_REQUEST, "time": ts("2026-11-25T14:05:46.132671Z"), "level": "INFO"},
    ),
    "stop-ctrlc": (
        f"{V03}/run-ctrl-c/run-gil_contention.stdout.txt",
        {"kind": STOP_REQUEST, "time": ts("2026-11-25T14:12:26.665337Z"), "dataflow": None},
    ),
    "exit-signal": (
        f"{V11}/stop-grace-2s/dora-daemon.txt",
        {
            "kind": NODE_EXIT,
            "signal": 15,
            "node": "saver",
            "dataflow": "01a21300-a9d7-7fbb-8f73-fafe56868a8d",
            "time": ts("2026-11-25T13:59:06.421350Z"),
            "level": "ERROR",
        },
    ),
    "exit-code": (
        f"{V11}/node-fails/dora-daemon.txt",
        {
            "kind": NODE_EXIT,
            "exit_code": 1,
            "signal": None,
            "node": "raiser",
            "dataflow": "01a21309-fb65-790d-8e12-3d3f06eb4431",
            "time": ts("2026-11-25T14:09:12.229023Z"),
        },
    ),
    "planned-stop-signal": (
        f"{V11}/attach-stop-grace-2s/attach-gc.stdout.txt",
        {"kind": NODE_EXIT, "signal": 15, "node": "crunch", "time": None, "clock": "14:08:35"},
    ),
    "exit-status-signal": (
        f"{V03}/run-ctrl-c/run-gil_contention.stdout.txt",
        {"kind": NODE_EXIT, "signal": 9, "node": "crunch", "time": None, "clock": None},
    ),
    "exit-status-code": (
        f"{V11}/node-fails/run-raises.stdout.txt",
        {"kind": NODE_EXIT, "exit_code": 1, "node": "raiser", "clock": "14:06:44"},
    ),
    "exit-status-success": (
        f"{V11}/run-stop-after-3s/run-well_behaved.stdout.txt",
        {"kind": NODE_FINISHED, "node": "talker", "clock": "14:06:25", "level": "DEBUG"},
    ),
    "exited-with-code": (
        f"{V11}/node-fails/run-raises.stderr.txt",
        {"kind": NODE_EXIT, "exit_code": 1, "node": "raiser", "time": None},
    ),
    "grace-kill": (
        f"{V11}/stop-grace-2s/dora-daemon.txt",
        {
            "kind": GRACE_KILL,
            "node": "sleeper",
            "seconds": 3.0,
            "dataflow": None,
            "time": ts("2026-11-25T13:59:09.475280Z"),
        },
    ),
    "killed-no-reaction": (
        f"{V11}/detached-stop-grace-2s/stop-st.stderr.txt",
        {"kind": KILLED, "node": "sleeper", "signal": 9, "seconds": None, "time": None},
    ),
    "finished": (
        f"{V11}/attach-stop-grace-2s/attach-wb.stdout.txt",
        {"kind": NODE_FINISHED, "node": "talker", "clock": "14:08:57", "level": "INFO"},
    ),
    "drop-token-reply": (
        f"{V03}/detached-stop-grace-2s/dora-daemon.txt",
        {"kind": DROP_TOKEN, "time": ts("2026-11-25T14:11:25.695373Z"), "level": "WARN"},
    ),
    "dataflow-removed": (
        f"{V11}/stop-grace-2s/dora-coordinator.txt",
        {
            "kind": DATAFLOW_END,
            "dataflow": "01a21300-a9d7-7fbb-8f73-fafe56868a8d",
            "time": ts("2026-11-25T13:59:06.422096Z"),
        },
    ),
    "node-stopped": (
        f"{V11}/stop-kinds/dora-coordinator.txt",
        {
            "kind": NODE_STOP_REQUEST,
            "node": "deaf",
            "dataflow": "01a23433-b281-7eb2-9c50-178ad3f4b34c",
            "time": ts("2026-12-02T00:42:15.143137Z"),
        },
    ),
    "node-restarted": (
        f"{V11}/stop-kinds/dora-coordinator.txt",
        {
            "kind": NODE_RESTART_REQUEST,
            "node": "talker",
            "dataflow": "01a23433-b281-7eb2-9c50-178ad3f4b34c",
        },
    ),
    "startup-timeout-kill": (
        f"{V11}/stop-kinds/dora-daemon.txt",
        {"kind": STARTUP_KILL, "node": "stuck", "seconds": 3.0, "level": "WARN"},
    ),
    "health-timeout-kill": (
        f"{V11}/stop-kinds/health-check-interval/dora-daemon.txt",
        {"kind": HEALTH_KILL, "node": "deaf", "seconds": 3.0, "level": "WARN"},
    ),
    "finish-drain-escalation": (
        f"{V11}/stop-kinds/finish-drain/dora-daemon.txt",
        {
            "kind": FINISH_DRAIN,
            "node": "deaf",
            "dataflow": "01a23466-aca6-781d-9d9e-412212db2ad6",
            "seconds": 5.0,
            "level": "WARN",
        },
    ),
    "daemon-exited": (
        f"{V11}/stop-kinds/dora-coordinator.txt",
        {"kind": DAEMON_LEFT, "node": None, "level": "WARN"},
    ),
    "daemon-exiting": (
        f"{V11}/run-stop-after-3s/run-well_behaved.stdout.txt",
        {"kind": DATAFLOW_END, "time": ts("2026-11-25T14:06:25.486712Z")},
    ),
}


def test_every_pattern_has_a_case() -> None:
    names = [p.name for p in patterns.MESSAGE_PATTERNS]
    assert len(names) == len(set(names))
    assert set(names) == set(PATTERN_CASES)


@pytest.mark.parametrize("pattern", patterns.MESSAGE_PATTERNS, ids=lambda p: p.name)
def test_pattern_on_its_real_line(pattern: patterns.MessagePattern) -> None:
    rel, expected = PATTERN_CASES[pattern.name]
    assert rel.startswith(f"dora-{pattern.version}/"), "example and version from the same run"
    line = line_with(rel, pattern.example)
    event = parse.parse_line(line, "test")
    assert event is not None
    assert event.pattern == pattern.name
    assert event.source == "test"
    for name, value in expected.items():
        assert getattr(event, name) == value, name


# The same kinds of line in the other version's format.
OTHER_VERSION_CASES = [
    (
        f"{V03}/detached-stop-grace-2s/dora-coordinator.txt",
        "successfully send stop dataflow `01a2130b-f0fe",
        {
            "kind": STOP_REQUEST,
            "dataflow": "01a2130b-f0fe-78c5-9edb-120a8dd69a68",
            "time": ts("2026-11-25T14:11:23.691300Z"),
        },
    ),
    (
        f"{V03}/detached-stop-grace-2s/dora-daemon.txt",
        "crunch was killed due to not stopping within the 2s grace period",
        {"kind": GRACE_KILL, "node": "crunch", "seconds": 2.0, "level": "WARN"},
    ),
    (
        f"{V03}/attach-stop-grace-2s/attach-gc.stdout.txt",
        "node was killed by dora",
        {"kind": KILLED, "node": "crunch", "signal": 9, "clock": None, "level": "ERROR"},
    ),
    (
        f"{V03}/node-fails/attach-rf.stdout.txt",
        "exited with code 1",
        {"kind": NODE_EXIT, "node": "raiser", "exit_code": 1},
    ),
    (
        f"{V03}/attach-stop-grace-2s/attach-wb.stdout.txt",
        "listener finished successfully",
        {"kind": NODE_FINISHED, "node": "listener"},
    ),
    (
        f"{V03}/node-fails/dora-coordinator.txt",
        "removed machine id",
        {"kind": DATAFLOW_END, "dataflow": "01a21310-16cf-7d69-bee1-d7861228a513"},
    ),
    (
        f"{V11}/run-stop-after-3s/run-sigterm_handler.stdout.txt",
        "within the 15s grace period",
        {"kind": GRACE_KILL, "node": "sleeper", "seconds": 15.0},
    ),
    (
        f"{V11}/run-stop-after-3s/run-gil_contention.stdout.txt",
        "node exited with error: Signal(15)",
        {
            "kind": NODE_EXIT,
            "signal": 15,
            "node": "crunch",
            "dataflow": "01a21306-cf5b-75c9-a251-e3dd0b4a8f9f",
            "time": ts("2026-11-25T14:05:56.137809Z"),
        },
    ),
]


@pytest.mark.parametrize("rel,text,expected", OTHER_VERSION_CASES)
def test_pattern_on_lines_of_other_runs(rel: str, text: str, expected: Dict[str, object]) -> None:
    event = parse.parse_line(line_with(rel, text))
    assert event is not None
    for name, value in expected.items():
        assert getattr(event, name) == value, name


# --- whole files: exactly the events their READMEs describe ----------------------------------


def test_stop_grace_2s_files() -> None:
    coordinator = events_of(f"{V11}/stop-grace-2s/dora-coordinator.txt")
    stops = [e for e in coordinator if e.kind == STOP_REQUEST]
    assert [e.dataflow for e in stops] == [
        "01a21300-a96c-77cb-9313-f64516827842",
        "01a21300-a9d7-7fbb-8f73-fafe56868a8d",
        "01a21300-aa4c-7540-a28f-515591e375ae",
    ]
    assert [e.kind for e in coordinator] == [STOP_REQUEST, DATAFLOW_END] * 3
    daemon = events_of(f"{V11}/stop-grace-2s/dora-daemon.txt")
    assert brief(daemon) == [
        (NODE_EXIT, "saver", 15, None, None),
        (GRACE_KILL, "sleeper", None, None, 3.0),
        (NODE_EXIT, "sleeper", 9, None, None),
    ]
    saver_stop = stops[1].time
    assert saver_stop is not None and daemon[0].time is not None
    assert round(daemon[0].time - saver_stop, 2) == 2.01  # README: 2.01 s after the stop line


DETACHED_11 = {  # name: (uuid, node, signal or None for clean, stop -> end in the README)
    "gc": ("01a21305-cb97-77dd-bba8-12ff8de085c5", "crunch", 15, 2.009),
    "sps": ("01a21305-cbe3-7116-be97-ddd602c7f3a4", "stubborn", 15, 2.011),
    "sc": ("01a21305-cc58-7c8a-b333-dc66d15d6f54", "saver", 15, 2.008),
    "is": ("01a21305-ccb7-7813-9311-3be2d021ed9a", "deaf", 15, 2.008),
    "wb": ("01a21305-cd0c-751d-9c6a-bbfe64668ac8", None, None, 0.090),
    "st": ("01a21305-cdf1-7e80-b38e-21409f8f0cf1", "sleeper", 9, 3.012),
}


def test_detached_1_1_0_files() -> None:
    folder = f"{V11}/detached-stop-grace-2s"
    coordinator = events_of(f"{folder}/dora-coordinator.txt")
    assert [(e.kind, e.dataflow) for e in coordinator] == [
        (kind, uuid)
        for uuid, _, _, _ in DETACHED_11.values()
        for kind in (STOP_REQUEST, DATAFLOW_END)
    ]
    daemon = events_of(f"{folder}/dora-daemon.txt")
    assert brief(daemon) == [
        (NODE_EXIT, "crunch", 15, None, None),
        (NODE_EXIT, "stubborn", 15, None, None),
        (NODE_EXIT, "saver", 15, None, None),
        (NODE_EXIT, "deaf", 15, None, None),
        (GRACE_KILL, "sleeper", None, None, 3.0),
        (NODE_EXIT, "sleeper", 9, None, None),
    ]
    stop_at = {e.dataflow: e.time for e in coordinator if e.kind == STOP_REQUEST}
    end_at = {e.dataflow: e.time for e in coordinator if e.kind == DATAFLOW_END}
    for uuid, node, signal, seconds in DETACHED_11.values():
        exits = [e for e in daemon if e.kind == NODE_EXIT and e.dataflow == uuid]
        start = stop_at[uuid]
        assert start is not None
        if node is None:
            assert exits == []
            end = end_at[uuid]
        else:
            (exit_event,) = exits
            assert (exit_event.node, exit_event.signal) == (node, signal)
            end = exit_event.time
        assert end is not None
        assert round(end - start, 3) == seconds
    for name in DETACHED_11:
        found = events_of(f"{folder}/stop-{name}.stderr.txt")
        found += events_of(f"{folder}/stop-{name}.stdout.txt")
        if name == "st":
            assert [(e.kind, e.node, e.signal, e.dataflow) for e in found] == [
                (KILLED, "sleeper", 9, DETACHED_11["st"][0])
            ]
        else:
            assert found == []


DETACHED_03 = {  # name: (uuid, node killed or None, stop -> end in the README)
    "gc": ("01a2130b-f0fe-78c5-9edb-120a8dd69a68", "crunch", 2.002),
    "sps": ("01a2130b-f1d6-70da-ab81-906d0ad72ed3", "stubborn", 2.003),
    "sc": ("01a2130b-f2aa-70a9-8fa4-a983f2e662ba", "saver", 2.002),
    "is": ("01a2130b-f37a-7c65-a7d3-9c6507b77d9a", "deaf", 2.002),
    "wb": ("01a2130b-f456-7a75-b288-c0009cc1620b", None, 0.031),
    "st": ("01a2130b-f53e-79aa-ae9d-23c10c117b9b", "sleeper", 2.001),
}


def test_detached_0_3_13_files() -> None:
    folder = f"{V03}/detached-stop-grace-2s"
    coordinator = events_of(f"{folder}/dora-coordinator.txt")
    assert [(e.kind, e.dataflow) for e in coordinator] == [
        (kind, uuid) for uuid, _, _ in DETACHED_03.values() for kind in (STOP_REQUEST, DATAFLOW_END)
    ]
    killed = [node for _, node, _ in DETACHED_03.values() if node]
    for rel in (f"{folder}/dora-daemon.txt", f"{folder}/daemon.console.txt"):
        daemon = events_of(rel)
        assert brief(daemon) == [
            item
            for node in killed
            for item in ((GRACE_KILL, node, None, None, 2.0), (DROP_TOKEN, node, None, None, None))
        ], rel
    daemon = events_of(f"{folder}/dora-daemon.txt")
    stops = [e for e in coordinator if e.kind == STOP_REQUEST]
    ends = {e.dataflow: e.time for e in coordinator if e.kind == DATAFLOW_END}
    kills = [e for e in daemon if e.kind == GRACE_KILL]
    for stop in stops:
        _, node, seconds = next(v for v in DETACHED_03.values() if v[0] == stop.dataflow)
        assert stop.time is not None
        if node is None:
            end = ends[stop.dataflow]
        else:
            end = next(k.time for k in kills if k.node == node)
        assert end is not None
        assert round(end - stop.time, 3) == seconds
    for name, (uuid, node, _) in DETACHED_03.items():
        found = events_of(f"{folder}/stop-{name}.stderr.txt")
        expected = [(KILLED, node, 9, uuid)] if node else []
        assert [(e.kind, e.node, e.signal, e.dataflow) for e in found] == expected
        # `dora start --detach` on 0.3.13 prints the dataflow's first log lines: no stop facts
        assert events_of(f"{folder}/start-{name}.stdout.txt") == []


RUN_11: Dict[str, List[Brief]] = {  # dora run --stop-after 3s, in file order
    "gil_contention": [
        (STOP_REQUEST, None, None, None, None),
        (NODE_EXIT, "crunch", 15, None, None),
        (DATAFLOW_END, None, None, None, None),
        (NODE_EXIT, "crunch", 15, None, None),
        (NODE_EXIT, "crunch", 15, None, None),
        (NODE_FINISHED, "crunch", None, None, None),
    ],
    "ignores_stop": [
        (STOP_REQUEST, None, None, None, None),
        (NODE_EXIT, "deaf", 15, None, None),
        (DATAFLOW_END, None, None, None, None),
        (NODE_EXIT, "deaf", 15, None, None),
        (NODE_EXIT, "deaf", 15, None, None),
        (NODE_FINISHED, "deaf", None, None, None),
    ],
    "sigterm_handler": [
        (STOP_REQUEST, None, None, None, None),
        (GRACE_KILL, "sleeper", None, None, 15.0),
        (NODE_EXIT, "sleeper", 9, None, None),
        (DATAFLOW_END, None, None, None, None),
        (NODE_EXIT, "sleeper", 9, None, None),
        (KILLED, "sleeper", 9, None, None),
    ],
}


def _sorted_brief(events: Sequence[LogEvent]) -> List[Brief]:
    # the daemon's tracing lines and the CLI's lines race on stdout: compare as multisets
    return sorted(brief(events), key=repr)


@pytest.mark.parametrize("variant", ["", ".color"])
def test_run_1_1_0_files(variant: str) -> None:
    folder = f"{V11}/run-stop-after-3s"
    for sample, expected in RUN_11.items():
        found = events_of(f"{folder}/run-{sample}{variant}.stdout.txt")
        assert _sorted_brief(found) == sorted(expected, key=repr), sample
        stop = found[0]
        assert stop.kind == STOP_REQUEST and stop.pattern == "stop-after"
        end = next(e for e in found if e.kind == NODE_EXIT and e.time is not None)
        assert stop.time is not None and end.time is not None
        assert 10.0 <= end.time - stop.time < 15.1  # README: 10.005 s, 15.014 s
    for sample, nodes in (
        ("slow_python_stop", ["stubborn"]),
        ("slow_cleanup", ["saver"]),
        ("well_behaved", ["talker", "listener"]),
    ):
        found = events_of(f"{folder}/run-{sample}{variant}.stdout.txt")
        assert {e.kind for e in found} == {STOP_REQUEST, NODE_FINISHED, DATAFLOW_END}, sample
        finished = [e.node for e in found if e.kind == NODE_FINISHED]
        assert sorted(finished) == sorted(n for n in nodes for _ in (1, 2))  # DEBUG + INFO line
        assert events_of(f"{folder}/run-{sample}{variant}.stderr.txt") == []
    (killed,) = events_of(f"{folder}/run-sigterm_handler{variant}.stderr.txt")
    assert (killed.kind, killed.node, killed.dataflow) == (KILLED, "sleeper", None)


def test_run_1_1_0_colour_and_plain_agree() -> None:
    folder = f"{V11}/run-stop-after-3s"
    for sample in ("gil_contention", "slow_cleanup", "sigterm_handler", "well_behaved"):
        plain = events_of(f"{folder}/run-{sample}.stdout.txt")
        colour = events_of(f"{folder}/run-{sample}.color.stdout.txt")
        assert _sorted_brief(plain) == _sorted_brief(colour), sample
        assert all(e.clock is None or len(e.clock) == 8 for e in plain + colour)
        assert not any("\x1b" in e.text for e in plain + colour), "no colour code left"


RUN_03_KILLED = {"gil_contention": "crunch", "ignores_stop": "deaf", "sigterm_handler": "sleeper"}


@pytest.mark.parametrize("variant", ["", ".color"])
def test_run_0_3_13_files(variant: str) -> None:
    folder = f"{V03}/run-ctrl-c"
    for sample, node in RUN_03_KILLED.items():
        found = events_of(f"{folder}/run-{sample}{variant}.stdout.txt")
        assert _sorted_brief(found) == sorted(
            [
                (STOP_REQUEST, None, None, None, None),
                (GRACE_KILL, node, None, None, 15.0),
                (NODE_EXIT, node, 9, None, None),
                (KILLED, node, 9, None, None),
                (DATAFLOW_END, None, None, None, None),
                (DROP_TOKEN, node, None, None, None),
            ],
            key=repr,
        ), sample
        stop = next(e for e in found if e.kind == STOP_REQUEST)
        kill = next(e for e in found if e.kind == GRACE_KILL)
        assert stop.pattern == "stop-ctrlc"
        assert stop.time is not None and kill.time is not None
        assert 15.0 <= kill.time - stop.time < 15.1  # README: 15.001-15.055 s
        stderr = events_of(f"{folder}/run-{sample}{variant}.stderr.txt")
        assert brief(stderr) == [(KILLED, node, 9, None, None)]
    for sample, nodes in (
        ("slow_python_stop", ["stubborn"]),
        ("slow_cleanup", ["saver"]),
        ("well_behaved", ["listener", "talker"]),
    ):
        found = events_of(f"{folder}/run-{sample}{variant}.stdout.txt")
        assert {e.kind for e in found} == {STOP_REQUEST, NODE_FINISHED, DATAFLOW_END}, sample
        assert sorted(e.node for e in found if e.kind == NODE_FINISHED) == sorted(nodes * 2)


ATTACH_11 = {
    "gc": [(NODE_EXIT, "crunch", 15, None, None), (NODE_FINISHED, "crunch", None, None, None)],
    "sps": [(NODE_EXIT, "stubborn", 15, None, None), (NODE_FINISHED, "stubborn", None, None, None)],
    "sc": [(NODE_EXIT, "saver", 15, None, None), (NODE_FINISHED, "saver", None, None, None)],
    "is": [(NODE_EXIT, "deaf", 15, None, None), (NODE_FINISHED, "deaf", None, None, None)],
    "wb": [
        (NODE_FINISHED, "listener", None, None, None),
        (NODE_FINISHED, "talker", None, None, None),
    ],
    "st": [(KILLED, "sleeper", 9, None, None)],
}


def test_attach_1_1_0_files() -> None:
    folder = f"{V11}/attach-stop-grace-2s"
    for name, expected in ATTACH_11.items():
        found = events_of(f"{folder}/attach-{name}.stdout.txt")
        assert brief(found) == expected, name
        assert all(e.time is None and e.clock is not None for e in found)
    (killed,) = events_of(f"{folder}/attach-st.stderr.txt")
    assert (killed.kind, killed.dataflow) == (KILLED, "01a21309-caf3-7715-88e7-971e726657e0")
    daemon = events_of(f"{folder}/dora-daemon.txt")
    assert [(e.kind, e.node, e.signal) for e in daemon] == [
        (NODE_EXIT, "crunch", 15),
        (NODE_EXIT, "stubborn", 15),
        (NODE_EXIT, "saver", 15),
        (NODE_EXIT, "deaf", 15),
        (GRACE_KILL, "sleeper", None),
        (NODE_EXIT, "sleeper", 9),
    ]


def test_attach_0_3_13_files() -> None:
    folder = f"{V03}/attach-stop-grace-2s"
    for name, node in (("gc", "crunch"), ("sps", "stubborn"), ("sc", "saver"), ("is", "deaf")):
        assert brief(events_of(f"{folder}/attach-{name}.stdout.txt")) == [
            (KILLED, node, 9, None, None)
        ]
    assert brief(events_of(f"{folder}/attach-st.stdout.txt")) == [
        (KILLED, "sleeper", 9, None, None)
    ]
    # README: talker's "finished successfully" line never reached the attached CLI
    assert brief(events_of(f"{folder}/attach-wb.stdout.txt")) == [
        (NODE_FINISHED, "listener", None, None, None)
    ]
    daemon = events_of(f"{folder}/dora-daemon.txt")
    assert [(e.kind, e.node) for e in daemon] == [
        (kind, node)
        for node in ("crunch", "stubborn", "saver", "deaf", "sleeper")
        for kind in (GRACE_KILL, DROP_TOKEN)
    ]


def test_node_fails_files() -> None:
    daemon = events_of(f"{V11}/node-fails/dora-daemon.txt")
    assert [(e.kind, e.node, e.exit_code, e.dataflow) for e in daemon] == [
        (NODE_EXIT, "raiser", 1, "01a21309-fb65-790d-8e12-3d3f06eb4431"),
        (NODE_EXIT, "raiser", 1, "01a2130a-0464-79ba-8612-6129b261d0ed"),
    ]
    for rel in (f"{V11}/node-fails/attach-rf.stdout.txt", f"{V03}/node-fails/attach-rf.stdout.txt"):
        assert brief(events_of(rel)) == [(NODE_EXIT, "raiser", None, 1, None)], rel
    for version, uuid in (
        (V11, "01a21309-fb65-790d-8e12-3d3f06eb4431"),
        (V03, "01a21310-16cf-7d69-bee1-d7861228a513"),
    ):
        (failed,) = events_of(f"{version}/node-fails/attach-rf.stderr.txt")
        assert (failed.kind, failed.node, failed.exit_code, failed.dataflow) == (
            NODE_EXIT,
            "raiser",
            1,
            uuid,
        )
    # 0.3.13's daemon says nothing about the failed node; its coordinator only ends the dataflow
    assert events_of(f"{V03}/node-fails/dora-daemon.txt") == []
    assert [e.kind for e in events_of(f"{V03}/node-fails/dora-coordinator.txt")] == [
        DATAFLOW_END,
        DATAFLOW_END,
    ]
    for variant in ("", ".color"):
        for version in (V11, V03):
            found = events_of(f"{version}/node-fails/run-raises{variant}.stdout.txt")
            exits = [(e.pattern, e.exit_code) for e in found if e.kind == NODE_EXIT]
            assert ("exit-status-code", 1) in exits and ("exited-with-code", 1) in exits
            assert STOP_REQUEST not in {e.kind for e in found}


def test_node_logs_carry_no_stop_events() -> None:
    for path in sorted(FIX.glob("dora-*/*/out/*/log_*")):
        assert list(parse.parse_lines(path.read_text(encoding="utf-8").splitlines())) == [], path


def test_every_fixture_file_parses_without_error() -> None:
    for path in sorted(FIX.glob("dora-*/**/*")):
        if path.is_file() and path.suffix in (".txt", ".jsonl"):
            for line in path.read_text(encoding="utf-8").splitlines():
                envelopes.parse_record(line)
                parse.parse_line(line)


# --- envelopes -------------------------------------------------------------------------------


def test_node_jsonl_envelope() -> None:
    rel = f"{V11}/node-fails/out/01a21309-fb65-790d-8e12-3d3f06eb4431/log_raiser.jsonl"
    first = envelopes.parse_record(lines_of(rel)[0])
    assert first is not None
    assert first.envelope == "node-json"
    assert (first.node, first.level, first.message) == (
        "raiser",
        "stdout",
        "Traceback (most recent call last):",
    )
    assert first.time == ts("2026-11-25T14:09:12.198Z")
    queue = f"{V11}/node-log-queue-full/out/01a21311-209c-7f1b-9f48-dcf465f1d879/log_slowpoke.jsonl"
    warning = envelopes.parse_record(lines_of(queue)[0])
    assert warning is not None
    assert warning.envelope == "node-json"
    assert (warning.node, warning.level, warning.target) == (
        "slowpoke",
        "warn",
        "dora_node_api::event_stream::scheduler",
    )
    assert warning.message == "Discarding event for input `tick` due to queue size limit"
    assert warning.time == ts("2026-11-25T14:17:00.550Z")


def test_node_jsonl_whose_msg_is_a_json_tracing_line() -> None:
    outer = json.loads(
        lines_of(
            f"{V11}/node-log-queue-full/out/01a21311-209c-7f1b-9f48-dcf465f1d879/log_slowpoke.jsonl"
        )[0]
    )
    inner = line_with(f"{V11}/stop-grace-2s/dora-daemon.txt", "Signal(15)")
    outer.update(msg=inner, level="stdout", target=None, fields=None)
    event = parse.parse_line(json.dumps(outer))
    assert event is not None
    assert (event.kind, event.signal, event.node) == (NODE_EXIT, 15, "saver")
    assert event.time == ts("2026-11-25T13:59:06.421350Z")  # the inner line's own time
    assert event.dataflow == "01a21300-a9d7-7fbb-8f73-fafe56868a8d"


def test_json_line_function_kept() -> None:
    line = line_with(f"{V11}/stop-grace-2s/dora-daemon.txt", "Signal(9)")
    event = parse.parse_json_line(line, "daemon")
    assert event is not None and (event.kind, event.signal, event.source) == (
        NODE_EXIT,
        9,
        "daemon",
    )
    assert parse.parse_json_line("not json") is None


def test_cli_line_with_and_without_colour() -> None:
    text = "`crunch` exited with Signal(15) during planned stop"
    plain = envelopes.parse_record(
        line_with(f"{V11}/run-stop-after-3s/run-gil_contention.stdout.txt", text)
    )
    colour_line = line_with(f"{V11}/run-stop-after-3s/run-gil_contention.color.stdout.txt", text)
    assert "\x1b[" in colour_line
    colour = envelopes.parse_record(colour_line)
    assert plain is not None and colour is not None
    assert plain.envelope == colour.envelope == "cli"
    assert (plain.node, plain.level, plain.clock, plain.time) == (
        "crunch",
        "INFO",
        "14:05:56",
        None,
    )
    assert (colour.node, colour.level, colour.message) == ("crunch", "INFO", plain.message)


def test_cli_line_without_time_0_3_13() -> None:
    line = line_with(f"{V03}/run-ctrl-c/run-gil_contention.color.stdout.txt", "node was killed")
    record = envelopes.parse_record(line)
    assert record is not None
    assert record.envelope == "cli-plain"
    assert (record.node, record.level, record.target, record.clock) == (
        "crunch",
        "ERROR",
        "daemon",
        None,
    )
    assert record.message.startswith("node was killed by dora")
    build = envelopes.parse_record(
        line_with(f"{V03}/attach-stop-grace-2s/attach-gc.stdout.txt", "all nodes")
    )
    assert build is not None and build.node is None and build.target == "daemon"
    dora_node = envelopes.parse_record(
        line_with(
            f"{V11}/run-stop-after-3s/run-well_behaved.stdout.txt", "[dora]: daemon all nodes"
        )
    )
    assert dora_node is not None and dora_node.node is None and dora_node.clock is not None


def test_tracing_text_spans_and_fields() -> None:
    destroy = envelopes.parse_record(
        line_with(f"{V03}/detached-stop-grace-2s/dora-daemon.txt", "received destroy command")
    )
    assert destroy is not None
    assert destroy.envelope == "tracing"
    assert (destroy.target, destroy.message) == (
        "dora_daemon",
        "received destroy command -> exiting",
    )
    spawn = envelopes.parse_record(
        line_with(f"{V03}/detached-stop-grace-2s/dora-coordinator.txt", "successfully triggered")
    )
    assert spawn is not None and spawn.target == "dora_coordinator::run"
    assert spawn.message.startswith("successfully triggered dataflow spawn `01a2130b-f0fe")
    failure = envelopes.parse_record(
        line_with(
            f"{V11}/run-stop-after-3s/run-gil_contention.color.stdout.txt", "Signal(15) node_id"
        )
    )
    assert failure is not None
    assert (failure.target, failure.node, failure.dataflow) == (
        "dora_daemon::spawn::prepared",
        "crunch",
        "01a21307-c080-7e5f-b891-810ad5a1289a",
    )


def test_error_block_lines_keep_their_events() -> None:
    lines = lines_of(f"{V03}/detached-stop-grace-2s/stop-gc.stderr.txt")
    assert "[ERROR]" in lines
    # alone, the line still carries the kill ...
    event = parse.parse_line(
        line_with(f"{V03}/detached-stop-grace-2s/stop-gc.stderr.txt", "Node `")
    )
    assert event is not None and (event.kind, event.node, event.dataflow) == (
        KILLED,
        "crunch",
        None,
    )
    # ... and in its block it also gets the dataflow of the "Dataflow <uuid> failed:" line
    (in_block,) = parse.parse_lines(lines)
    assert in_block.dataflow == "01a2130b-f0fe-78c5-9edb-120a8dd69a68"
    (no_uuid,) = events_of(f"{V03}/run-ctrl-c/run-gil_contention.stderr.txt")  # "Dataflow failed:"
    assert no_uuid.dataflow is None


def test_drop_token_warning_gets_its_node_from_the_next_lines() -> None:
    rel = f"{V03}/detached-stop-grace-2s/dora-daemon.txt"
    alone = parse.parse_line(line_with(rel, "NextFinishedDropTokens"))
    assert alone is not None and alone.kind == DROP_TOKEN and alone.node is None
    drops = [e for e in events_of(rel) if e.kind == DROP_TOKEN]
    assert [e.node for e in drops] == ["crunch", "stubborn", "saver", "deaf", "sleeper"]


JOURNAL_CASES = [
    # (prefix, fixture, text to find) -> the inner line's event, with the time or clock noted
    (
        "Nov 25 14:11:25 robot dora[4242]: ",
        f"{V03}/detached-stop-grace-2s/dora-daemon.txt",
        "crunch was killed",
    ),
    ("Nov 25 13:59:09 robot dora[77]: ", f"{V11}/stop-grace-2s/dora-daemon.txt", "Signal(9)"),
    (
        "Nov  5 14:08:35 robot dora[5]: ",
        f"{V11}/attach-stop-grace-2s/attach-gc.stdout.txt",
        "planned stop",
    ),
    (
        "2026-11-25T14:11:25.700000+00:00 robot dora-daemon[88]: ",
        f"{V03}/detached-stop-grace-2s/stop-gc.stderr.txt",
        "Node `crunch`",
    ),
    (
        "<30>Nov 25 14:12:41 robot dora: ",
        f"{V03}/run-ctrl-c/run-gil_contention.stdout.txt",
        "exit status Signal(9)",
    ),
]


@pytest.mark.parametrize("prefix,rel,text", JOURNAL_CASES)
def test_journald_and_syslog_prefixes(prefix: str, rel: str, text: str) -> None:
    line = line_with(rel, text)
    direct = parse.parse_line(line)
    prefixed = parse.parse_line(prefix + line)
    assert direct is not None and prefixed is not None
    assert brief([prefixed]) == brief([direct])
    assert prefixed.dataflow == direct.dataflow
    if direct.time is not None:
        assert prefixed.time == direct.time  # the line's own time wins
    elif prefix[0].isdigit():
        assert prefixed.time == ts(prefix.split()[0])
    else:
        assert prefixed.time is None  # a syslog date has no year: never invented
        assert prefixed.clock == (direct.clock or prefix.split()[2])


def test_clock_only_lines_never_get_a_date() -> None:
    for event in events_of(f"{V11}/attach-stop-grace-2s/attach-gc.stdout.txt"):
        assert event.time is None
        assert event.clock == "14:08:35"


# --- what is not a fact ----------------------------------------------------------------------

GARBAGE = [
    "",
    "   ",
    "\x00\x01\x02\xff",
    "{",
    "{]",
    "[" * 5000,
    "{" * 5000,
    '{"fields": 3}',
    '{"timestamp": 5, "fields": {"message": 7}, "span": []}',
    '{"ts": null, "msg": {"a": 1}}',
    "null",
    "[1, 2, 3]",
    "2026-13-45T25:61:61Z  INFO dora_daemon: hello",
    "99:99:99 INFO   x: nothing here",
    "Nov 99 99:99:99 host ident[notapid]: ",
    "INFO",
    "crunch: stdout    ",
    "x" * 100_000,
    "\x1b[31m\x1b[0m",
    "\x1b]0;title\x07",
    "run_inner{a={{{{: target: message",
    "2026-11-25T14:11:25Z  INFO run_inner{a={{{{: target: message",
    '{"a":' + "[" * 100_000,
    "Caused by:",
    "   0: failed to send reply to node `crunch`",
    "Location:",
    "Dataflow 01a2130b-f0fe-78c5-9edb-120a8dd69a68 failed:",
    "killed due to not stopping",  # the start of a line without the rest
    '{"other": "node exited with error: Signal(15)"}',  # JSON, but no message field
    '{"fields": {"message": "node exited with error: Signal(15)"',  # a cut JSON line
    'Nov 25 14:11:25 robot dora[1]: {"fields": {"message": "node exited with error: Signal(9)',
]


@pytest.mark.parametrize("line", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_yields_nothing(line: str) -> None:
    assert parse.parse_line(line) is None
    assert list(parse.parse_lines([line])) == []


def test_unknown_real_lines_yield_nothing() -> None:
    for rel, text in (
        (f"{V11}/stop-grace-2s/dora-coordinator.txt", "WS server listening"),
        (f"{V11}/stop-grace-2s/dora-daemon.txt", "process was killed on drop"),
        (f"{V03}/detached-stop-grace-2s/dora-daemon.txt", "Zenoh can be reached"),
        (f"{V11}/run-stop-after-3s/run-well_behaved.stdout.txt", "stopping after 3s as requested"),
        (f"{V11}/node-fails/run-raises.stdout.txt", "stdout raiser: Traceback"),
    ):
        assert parse.parse_line(line_with(rel, text)) is None, text


def test_parse_timestamp_forms() -> None:
    assert ts("2026-11-25T13:59:06Z") == 1795615146.0
    assert ts("2026-11-25T13:59:06.5Z") == 1795615146.5
    assert ts("2026-11-25T14:59:06+01:00") == 1795615146.0
    assert ts("2026-11-25 13:59:06") == 1795615146.0
    assert envelopes.parse_timestamp("13:59:06") is None
    assert envelopes.parse_timestamp("2026-13-45T25:61:61Z") is None


def test_event_from_message_stays_compatible() -> None:
    event = patterns.event_from_message(
        "node exited with error: Signal(15)", 1.0, "df", "n", "daemon"
    )
    assert event == LogEvent(
        kind=NODE_EXIT,
        time=1.0,
        dataflow="df",
        node="n",
        signal=15,
        source="daemon",
        pattern="exit-signal",
        text="node exited with error: Signal(15)",
    )
    assert patterns.event_from_message("nothing to see", None) is None


def test_stop_kinds_of_1_1_0_each_read_once_from_the_real_logs() -> None:
    """Every line capture.py's scenarios left that names a stop kind, in order, and nothing
    more: a policy restart leaves no line of its own on 1.1.0, a health kill one only with a
    ``health_check_interval``."""
    rel = f"{V11}/stop-kinds"
    kinds = (NODE_STOP_REQUEST, NODE_RESTART_REQUEST, STARTUP_KILL, HEALTH_KILL, DAEMON_LEFT)
    found = [
        (e.kind, e.node)
        for name in (
            "dora-coordinator.txt",
            "dora-daemon.txt",
            "health-check-interval/dora-daemon.txt",
        )
        for e in events_of(f"{rel}/{name}")
        if e.kind in kinds
    ]
    assert found == [
        (NODE_STOP_REQUEST, "deaf"),
        (NODE_RESTART_REQUEST, "talker"),
        (DAEMON_LEFT, None),
        (STARTUP_KILL, "stuck"),
        (HEALTH_KILL, "deaf"),
    ]
