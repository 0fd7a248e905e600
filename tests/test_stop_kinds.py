"""Stop kinds and single-node stops in the history, from dora 1.1.0's real lines
(``tests/fixtures/dora-1.1.0/stop-kinds/``). The end-to-end run is in test_watch_e2e.py."""

from __future__ import annotations

from pathlib import Path
from typing import List

from dora_doctor.history import entries, store
from dora_doctor.history.store import NodeStopRow, StopRow
from dora_doctor.logs import parse
from dora_doctor.logs.events import LogEvent
from dora_doctor.model import Dataflow, NodeProcess, ProcessEvent
from dora_doctor.recording.model import Recording

KINDS = Path(__file__).parent / "fixtures" / "dora-1.1.0" / "stop-kinds"
UUID = "01a23433-b281-7eb2-9c50-178ad3f4b34c"  # the node stop and restart's dataflow


def real_events(*names: str) -> List[LogEvent]:
    return [
        event
        for name in names
        for event in parse.parse_lines((KINDS / name).read_text().splitlines(), "test")
    ]


def recording(logs: List[LogEvent], nodes: List[str]) -> Recording:
    flow = Dataflow(
        uuid=UUID,
        name="ns",
        nodes=[NodeProcess(id=n, dataflow=UUID, pid=100 + i) for i, n in enumerate(nodes)],
    )
    return Recording(path=None, header={}, dataflows=[flow], logs=logs)


def test_a_node_stop_line_is_that_node_s_request_and_not_the_dataflow_s() -> None:
    whole = recording(real_events("dora-coordinator.txt"), ["deaf", "talker"])
    view = entries.node_view(whole, "deaf")
    assert [n.id for n in view.dataflows[0].nodes] == ["deaf"]
    requests = [e for e in view.logs if e.kind == "stop-request"]
    # the dataflow's later `dora stop` is left out; deaf's own `dora node stop` stands in
    assert [(e.pattern, e.node, e.dataflow) for e in requests] == [("node-stopped", "deaf", UUID)]
    assert entries.node_kind(view, "deaf", restarted=False) == entries.NODE_STOP
    assert entries.node_kind(entries.node_view(whole, "talker"), "talker", False) == (
        entries.RESTART
    )
    # the original recording is untouched
    assert [n.id for n in whole.dataflows[0].nodes] == ["deaf", "talker"]


def test_kills_and_a_policy_restart_are_told_from_their_evidence() -> None:
    startup = recording(real_events("dora-daemon.txt"), ["stuck"])
    assert entries.node_kind(startup, "stuck", restarted=False) == entries.STARTUP_KILL
    health = recording(real_events("health-check-interval/dora-daemon.txt"), ["deaf"])
    assert entries.node_kind(health, "deaf", restarted=False) == entries.HEALTH_KILL
    # no line names a policy restart: only the new process the watch saw
    quiet = recording([], ["brief"])
    assert entries.node_kind(quiet, "brief", restarted=True) == entries.RESTART
    assert entries.node_kind(quiet, "brief", restarted=False) == entries.FINISH


def test_a_node_that_ended_unlogged_is_a_stop_with_an_unknown_outcome() -> None:
    from dora_doctor.analysis import diagnose

    rec = recording([], ["brief", "talker"])
    rec.events = [ProcessEvent(UUID, "brief", 100, 1_800_000_000.0, "exited")]
    view = entries.node_view(rec, "brief")
    rows = entries.node_stop_rows(
        view, diagnose.report_from_recording(view), "brief", entries.RESTART, "watch"
    )
    assert len(rows) == 1
    (row,) = rows
    assert (row.kind, row.started_at, row.single_node) == ("restart", 1_800_000_000.0, "brief")
    assert [(n.node, n.outcome) for n in row.nodes] == [("brief", None)]


def stop_at(at: float, kind: str, nodes: List[str], single: str = "") -> StopRow:
    row = StopRow(dataflow_uuid=UUID, kind=kind, writer="watch", started_at=at)
    row.nodes = [
        NodeStopRow(node=n, outcome="clean", stop_to_exit_s=0.1, censored=False) for n in nodes
    ]
    row.single_node = single or None
    return row


def test_a_dataflow_stop_just_after_a_node_restart_is_its_own_entry(tmp_path: Path) -> None:
    db = store.connect(tmp_path / "h.sqlite3")
    assert store.add_stop(db, stop_at(100.0, "restart", ["talker"], single="talker"))
    assert store.add_stop(db, stop_at(100.5, "restart", ["brief"], single="brief"))
    assert store.add_stop(db, stop_at(101.0, "stop", ["talker", "brief"]))
    # and each, read again, is known
    assert not store.add_stop(db, stop_at(100.0, "restart", ["talker"], single="talker"))
    assert not store.add_stop(db, stop_at(101.3, "stop", ["talker", "brief"]))
    assert db.execute("SELECT count(*) FROM stops").fetchone()[0] == 3


def test_followers_of_one_stop_merge_into_one_entry() -> None:
    merged = entries.merge_stops(
        [
            stop_at(10.0, "stop", ["a", "b"]),
            stop_at(10.4, "stop", ["c"]),
            stop_at(30, "stop", ["d"]),
        ]
    )
    assert [(r.started_at, [n.node for n in r.nodes]) for r in merged] == [
        (10.0, ["a", "b", "c"]),
        (30, ["d"]),
    ]


def test_the_live_status_line_escapes_names_from_the_target() -> None:
    from rich.console import Console

    from dora_doctor.capture.watcher import Watcher, WatchOptions
    from dora_doctor.report import consoles

    watch = Watcher(None, WatchOptions(db=Path("/nonexistent/h.sqlite3")), print)  # type: ignore[arg-type]
    watch.last_stop = "\x1b]0;owned\x07evil\x1b[2J: stop recorded"
    watch.stops_recorded = 3
    line = watch.status()
    assert line.startswith("following 0 dataflow(s), 0 node(s); 3 stop(s) recorded; last: ")
    screen = Console(file=__import__("io").StringIO(), force_terminal=True, width=300)
    screen.print(consoles.text(line))
    drawn = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b]" not in drawn and "\x07" not in drawn and "\x1b[2J" not in drawn


STARTUP_UUID = "01a23434-22dd-77f8-96ef-6c29c9e383ed"  # the startup-timeout scenario's dataflow


def startup_recording(node: str = "stuck", uuid: str = STARTUP_UUID) -> Recording:
    flow = Dataflow(uuid=uuid, name="st", nodes=[NodeProcess(id=node, dataflow=uuid, pid=7)])
    logs = [e for e in real_events("dora-daemon.txt") if e.dataflow in (None, uuid)]
    return Recording(path=None, header={"logs": {"daemon": "d"}}, dataflows=[flow], logs=logs)


def test_a_startup_kill_is_killed_while_starting_on_dora_s_line() -> None:
    from dora_doctor.analysis import diagnose

    rec = startup_recording()
    report = diagnose.report_from_recording(rec)
    (stuck,) = report.dataflows[0].nodes
    assert (stuck.outcome, stuck.cause) == ("killed", "starting")
    assert "dora's startup-timeout kill line for the node" in stuck.rests_on
    said = " ".join(stuck.evidence)
    assert "not connecting within its startup_timeout (3 s)" in said, said
    assert "No stop was asked" in said
    (row,) = entries.stops_from(rec, report, "watch")
    assert row.kind == entries.STARTUP_KILL
    assert [(n.node, n.outcome, n.cause) for n in row.nodes] == [("stuck", "killed", "starting")]


def test_a_startup_kill_line_does_not_name_another_dataflow_s_node() -> None:
    """The line names the node, not its dataflow: a node of that name in a dataflow whose
    end is not the SIGKILL right after the line keeps no cause."""
    from dora_doctor.analysis import diagnose

    other = "01a23433-b281-7eb2-9c50-178ad3f4b34c"  # the node stop's dataflow
    rec = startup_recording("stuck", other)
    assert [e.node for e in rec.logs if e.kind == "startup-kill"] == ["stuck"]
    report = diagnose.report_from_recording(rec)
    (stuck,) = report.dataflows[0].nodes
    assert stuck.cause != "starting" and stuck.outcome != "killed"
    assert "dora's startup-timeout kill line for the node" not in stuck.rests_on


DRAIN_UUID = "01a23466-aca6-781d-9d9e-412212db2ad6"  # finish-drain/: sender ends, deaf stays


def test_the_finish_drain_escalation_line_is_a_named_pattern() -> None:
    (drain,) = [e for e in real_events("finish-drain/dora-daemon.txt") if e.kind == "finish-drain"]
    assert (drain.pattern, drain.dataflow, drain.node, drain.seconds) == (
        "finish-drain-escalation",
        DRAIN_UUID,
        "deaf",
        5.0,
    )


def test_a_node_stopped_by_the_finish_drain_is_a_finish_terminated_by_it() -> None:
    from dora_doctor.analysis import diagnose

    logs = real_events("finish-drain/dora-daemon.txt", "finish-drain/dora-coordinator.txt")
    flow = Dataflow(
        uuid=DRAIN_UUID,
        name="fd",
        nodes=[NodeProcess(id=n, dataflow=DRAIN_UUID, pid=7 + i) for i, n in enumerate(["deaf"])],
    )
    rec = Recording(path=None, header={"logs": {"daemon": "d"}}, dataflows=[flow], logs=logs)
    report = diagnose.report_from_recording(rec)
    (deaf,) = report.dataflows[0].nodes
    assert deaf.outcome == "terminated"
    assert deaf.stop_duration_s is not None and 9.9 <= deaf.stop_duration_s <= 10.1
    said = " ".join(deaf.evidence)
    assert "by dora's finish drain" in said, said
    # dora called the drained dataflow Failed: no "treating as clean" claimed for it
    assert "treating as clean" not in said, said
    (row,) = entries.stops_from(rec, report, "watch")
    assert (row.kind, row.requested_by) == ("finish", "dora's finish drain")
    assert [(n.node, n.outcome, n.censored) for n in row.nodes] == [("deaf", "terminated", True)]
    # the finish grace is no `dora stop --grace-duration`, and tune-grace does not rehearse it
    suggestion = report.dataflows[0].suggestion
    assert suggestion is not None and (suggestion.grace_s, suggestion.command) == (None, "")
    assert "deaf" in suggestion.reason and "finish_grace_secs" in suggestion.reason
    assert "tune-grace" not in suggestion.reason


def test_a_slow_cleanup_ended_by_the_finish_drain_is_told_of_the_finish_grace() -> None:
    """A node that reacted but whose cleanup outlived the finish grace: its grace advice is
    the finish grace (the YAML's finish_grace_secs), not a rehearsal of `dora stop`."""
    from dora_doctor.analysis import verdict as v
    from dora_doctor.analysis import wording
    from dora_doctor.analysis.timeline import FINISH_DRAIN_SOURCE

    def slow(source: str) -> v.NodeVerdict:
        verdict = v.NodeVerdict()
        verdict.add(v.F_STOP, source=source)
        verdict.add(v.F_SLOW, frame=None)
        return verdict

    (finish,) = [a.text for a in wording.advice(slow(FINISH_DRAIN_SOURCE)) if a.kind == "grace"]
    assert "finish_grace_secs" in finish and "tune-grace" not in finish
    (asked,) = [a.text for a in wording.advice(slow("dora-doctor")) if a.kind == "grace"]
    assert "tune-grace" in asked


def test_a_health_kill_is_said_with_dora_s_caveat_and_no_cause() -> None:
    """dora's health check names no cause (it counts only what a node sends): the node is
    killed, the line is its evidence, and no cause is claimed."""
    from dora_doctor.analysis import diagnose

    uuid = "01a23437-8b68-7ac7-ad3a-52f15aa9e662"
    flow = Dataflow(uuid=uuid, name="hc", nodes=[NodeProcess(id="deaf", dataflow=uuid, pid=7)])
    logs = real_events("health-check-interval/dora-daemon.txt")
    rec = Recording(path=None, header={"logs": {"daemon": "d"}}, dataflows=[flow], logs=logs)
    report = diagnose.report_from_recording(rec)
    (deaf,) = report.dataflows[0].nodes
    assert deaf.outcome == "killed" and deaf.cause is None
    assert "dora's health-check kill line for the node" in deaf.rests_on
    said = " ".join(deaf.evidence)
    assert "health check killed it (SIGKILL)" in said and "(3 s)" in said, said
    assert "only receives" in said


def test_the_status_line_says_dora_is_down_until_it_answers() -> None:
    from dora_doctor.capture.watcher import Watcher, WatchOptions

    watch = Watcher(None, WatchOptions(db=Path("/nonexistent/h.sqlite3")), print)  # type: ignore[arg-type]
    assert "DORA DOWN" not in watch.status()
    watch.down = (1_800_000_000.0, "dora's daemon exited")
    assert "; DORA DOWN since " in watch.status()
    assert "(dora's daemon exited), waiting for it" in watch.status()


def test_a_stop_after_the_coordinator_came_back_is_a_stop_after_the_daemon_left_is_dora_down() -> (
    None
):
    from dora_doctor.analysis.timeline import build_shutdown

    def kind_of(gone: str) -> str:
        rec = recording(
            [
                LogEvent(gone, 100.0, source="dora-doctor"),
                LogEvent("stop-request", 110.0, dataflow=UUID, source="coordinator"),
            ],
            ["talker"],
        )
        return entries._kind(rec, build_shutdown(rec, rec.dataflows[0]))

    assert kind_of("coordinator-gone") == entries.STOP
    assert kind_of("daemon-gone") == entries.DORA_DOWN


def test_a_follower_that_ended_with_its_last_node_s_restart_is_not_the_dataflow_s_end(
    tmp_path: Path,
) -> None:
    """The follower's child ends a moment after its last node's exit; when that comes before
    the watch saw the exit, the dataflow (still listed running) did not end: the node's own
    stop is looked for first, and the follower is recorded only after it."""
    import subprocess
    import sys

    from dora_doctor.capture.watcher import Follower, Watcher, WatchOptions

    ended = subprocess.Popen([sys.executable, "-c", "pass"])  # the follower's child, ended
    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # the restarted node's old process
    ended.wait()
    gone.wait()
    flow = Dataflow(uuid=UUID, name="kinds", nodes=[NodeProcess(id="talker", dataflow=UUID)])
    watch = Watcher(None, WatchOptions(db=tmp_path / "h.sqlite3"), print)  # type: ignore[arg-type]
    follower = Follower(flow, tmp_path / "r.ddrec", ended, pids={"talker": gone.pid})
    watch.followers[UUID] = follower
    watch.running = {UUID}
    watch._reap()
    assert watch.followers == {UUID: follower}  # kept: the node path has the exit first
    assert set(follower.gone) == {"talker"}
    # once the node is accounted for, the next look records the follower
    follower.gone.clear()
    follower.handled.add("talker")
    recorded: List[Follower] = []
    watch._record = recorded.append  # type: ignore[method-assign]
    watch._reap()
    assert recorded == [follower] and not watch.followers
    # a dataflow no longer listed running: its end, recorded at once
    again = Follower(flow, tmp_path / "s.ddrec", ended, pids={"talker": gone.pid})
    watch.followers[UUID] = again
    watch.running = set()
    watch._reap()
    assert recorded == [follower, again]


def test_a_follower_that_ends_while_its_node_runs_on_is_said_with_its_log(
    tmp_path: Path,
) -> None:
    """A node left unfollowed while its dataflow runs must be heard of, with the follower's
    stderr kept (why it ended shows only there); at the watch's own end it is expected."""
    import os
    import subprocess
    import sys

    from dora_doctor.capture.watcher import Follower, Watcher, WatchOptions
    from dora_doctor.recording.codec import make_header
    from dora_doctor.recording.writer import RecordingWriter

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    said: List[str] = []
    watch = Watcher(None, WatchOptions(db=tmp_path / "h.sqlite3"), said.append)  # type: ignore[arg-type]
    watch.running = {UUID}
    for ending in (False, True):
        flow = Dataflow(
            uuid=UUID, name="kinds", nodes=[NodeProcess("brief", UUID, pid=os.getpid())]
        )
        path = tmp_path / f"brief-{ending}.ddrec"
        RecordingWriter(path, make_header([flow], "1.1.0", {"rate": 100})).close()
        path.with_suffix(".log").write_text("Traceback: why it ended\n")
        follower = Follower(flow, path, ended, node="brief", pids={"brief": os.getpid()})
        watch.followers[UUID] = follower
        watch.ending = ending
        said.clear()
        watch._reap(final=ending)
        assert not watch.followers and not path.exists()
        if ending:
            assert said == [] and not path.with_suffix(".log").exists()
        else:
            assert said == [
                f"kinds: stopped following brief with no stop seen while the dataflow runs; "
                f"see {path.with_suffix('.log')}"
            ]
            assert path.with_suffix(".log").read_text() == "Traceback: why it ended\n"


def test_a_node_restart_just_before_its_dataflow_s_stop_is_still_its_own_entry(
    tmp_path: Path,
) -> None:
    """`dora node restart talker` then `dora stop` before the watch's poll handled the restart
    (it waits for dora's lines and the new process): the dataflow is no longer listed when
    the watch looks, yet dora's log says talker alone was restarted first, so the restart is
    its own entry and the dataflow's stop another. Lines: dora 1.1.0's coordinator."""
    import subprocess
    import sys

    from dora_doctor.capture.watcher import Follower, Watcher, WatchOptions
    from dora_doctor.recording.codec import make_header
    from dora_doctor.recording.writer import RecordingWriter

    lines = (KINDS / "dora-coordinator.txt").read_text().splitlines()
    restart, stop = parse.parse_lines(lines[3:5], "coordinator")
    assert restart.kind == "node-restart-request" and stop.kind == "stop-request"
    assert restart.time is not None and stop.time is not None
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    flow = Dataflow(
        uuid=UUID,
        name="ns",
        nodes=[NodeProcess("talker", UUID, pid=ended.pid), NodeProcess("listener", UUID, pid=9)],
    )
    path = tmp_path / "ns.ddrec"
    with RecordingWriter(path, make_header([flow], "1.1.0", {"rate": 100})) as writer:
        writer.write(restart)
        writer.write(ProcessEvent(UUID, "talker", ended.pid, restart.time + 0.05, "exited"))
        writer.write(stop)
        writer.write(ProcessEvent(UUID, "listener", 9, stop.time + 0.05, "exited"))
    said: List[str] = []
    watch = Watcher(None, WatchOptions(db=tmp_path / "h.sqlite3"), said.append)  # type: ignore[arg-type]
    follower = Follower(flow, path, ended, pids={"talker": ended.pid, "listener": 9})
    follower.gone = {"talker": restart.time + 0.05}
    watch.followers[UUID] = follower
    watch.running = set()  # `dora list`: the dataflow has ended
    watch._watch_nodes()
    assert follower.handled == {"talker"} and not follower.gone
    assert [line.split(":")[1].strip() for line in said] == ["restart of talker recorded"], said
    watch._reap()
    db = store.connect(tmp_path / "h.sqlite3")
    kinds = db.execute(
        "SELECT s.kind, group_concat(n.node) FROM stops s JOIN node_stops n ON n.stop_id = s.id "
        "GROUP BY s.id ORDER BY s.started_at"
    ).fetchall()
    assert kinds == [("restart", "talker"), ("stop", "listener")], (kinds, said)


def test_a_node_that_ended_in_its_dataflow_s_stop_is_left_to_it_and_not_looked_at_again(
    tmp_path: Path,
) -> None:
    """While `dora list` still shows a stopping dataflow, a node that ended after the stop
    line is the dataflow's: it is not a stop of its own, and the watch does not parse the
    recording again for it at every poll until the dataflow's end."""
    import subprocess
    import sys
    import time

    from dora_doctor.capture.watcher import Follower, Watcher, WatchOptions
    from dora_doctor.recording.codec import make_header
    from dora_doctor.recording.writer import RecordingWriter

    lines = (KINDS / "dora-coordinator.txt").read_text().splitlines()
    (stop,) = parse.parse_lines(lines[4:5], "coordinator")
    assert stop.kind == "stop-request" and stop.time is not None
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    flow = Dataflow(uuid=UUID, name="ns", nodes=[NodeProcess("talker", UUID, pid=ended.pid)])
    path = tmp_path / "ns.ddrec"
    with RecordingWriter(path, make_header([flow], "1.1.0", {"rate": 100})) as writer:
        writer.write(stop)
        writer.write(ProcessEvent(UUID, "talker", ended.pid, stop.time + 0.05, "exited"))

    class NodeList:
        def list_nodes(self) -> List[dict]:  # type: ignore[type-arg]
            return []  # the stopping dataflow's node is gone from `dora node list`

    said: List[str] = []
    watch = Watcher(NodeList(), WatchOptions(db=tmp_path / "h.sqlite3"), said.append)  # type: ignore[arg-type]
    follower = Follower(flow, path, ended, pids={"talker": ended.pid})
    follower.gone = {"talker": time.time() - 60}  # seen gone long enough ago
    watch.followers[UUID] = follower
    watch.running = {UUID}  # still listed, as Running, while it stops
    watch._watch_nodes()
    assert follower.stopping == {"talker"} and not follower.handled and not follower.gone
    assert said == [] and not watch._a_node_gone()
    watch._watch_nodes()
    assert not follower.gone  # not marked again
