"""`dora-doctor watch` end to end: a real private dora, real py-spy, real Python nodes. The
watch runs while the test starts and stops sample dataflows; each stop must appear once in
the history with the right outcome and cause, and with a recording `report` reads."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List

import pytest
from helpers import run_doctor, wait_for

from dora_doctor.dora.private import LocalDora
from dora_doctor.history import store
from dora_doctor.model import parse_exit_status
from dora_doctor.recording.reader import read_recording

pytestmark = pytest.mark.dora


class Watch:
    """The watch as a user runs it, its stderr lines collected as they come."""

    def __init__(self, env: dict, db: Path) -> None:  # type: ignore[type-arg]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dora_doctor", "watch", "--db", str(db), "--poll", "0.5s"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.db = db
        self.lines: List[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> List[str]:
        return [line for line in self.lines if text in line]

    def wait_said(self, text: str, timeout: float = 60.0) -> str:
        try:
            found = wait_for(lambda: self.said(text), timeout, f"watch to say {text!r}")
        except pytest.fail.Exception:
            pytest.fail(
                f"watch did not say {text!r}; it said:\n"
                + "\n".join(self.lines)
                + self.followers_said()
            )
        return found[0]

    def followers_said(self) -> str:
        """The end of each follower's stderr: why a follower ended early shows only there."""
        folder = store.recordings_dir(self.db)
        said = []
        for log in sorted(folder.glob("*.log")) if folder.exists() else []:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            said.append(f"\n--- {log.name}:\n" + "\n".join(tail))
        return "".join(said)

    def end(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(90)
        self.reader.join(5)
        return code


def _by_exit_status(conn: sqlite3.Connection, node: str, dataflow: str = "%") -> str:
    """The outcome a node that dora logs nothing about must have in its first stop (of
    ``dataflow``): the one its exit status says when that stop's recording holds it (read
    from /proc before the process was reaped, a race), else "unknown"."""
    (recording,) = conn.execute(
        "SELECT n.recording FROM node_stops n JOIN stops s ON n.stop_id = s.id "
        "WHERE n.node = ? AND s.dataflow_name LIKE ? ORDER BY s.started_at LIMIT 1",
        (node, dataflow),
    ).fetchone()
    exits = [
        e for e in read_recording(Path(recording)).events if e.node == node and e.kind == "exited"
    ]
    status = parse_exit_status(exits[0].detail) if exits else None
    if status is None:
        return "unknown"
    code, signal_number = status
    if signal_number is None:
        return "clean" if code == 0 else "failed"
    return {9: "killed", 15: "terminated"}.get(signal_number, "failed")


def recording_of(line: str) -> Path:
    return Path(line.rsplit("recording to ", 1)[1])


def ready(recording: Path, *nodes: str) -> bool:
    """Every node's first samples are on disk (the handshake before a stop).

    Counting stack records of the whole recording is not enough: one node can have two before
    the other has any, and a stop then finds that other node without samples."""
    if not recording.exists():
        return False
    sampled = set()
    for line in recording.read_text().splitlines():
        if '"type":"stacks"' in line:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line the follower is still writing
            # a segment py-spy wrote before its first sample (a loaded machine) is no sample
            if any(thread.get("spans") for thread in record.get("threads") or []):
                sampled.add(record.get("node"))
    return sampled >= set(nodes)


def test_watch_records_each_stop_once_with_outcome_cause_and_recording(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    # a dataflow already running when the watch starts is followed too
    local_dora.start_dataflow(samples / "slow_cleanup.yml", "cleanup")
    local_dora.wait_running("cleanup", nodes=1)
    watch = Watch(local_dora.env, db)
    try:
        first = recording_of(watch.wait_said("following cleanup"))
        wait_for(lambda: ready(first, "saver"), 60, "first samples of cleanup")
        local_dora.stop_dataflow("cleanup", "2s")
        watch.wait_said("cleanup: stop recorded", 90)

        local_dora.start_dataflow(samples / "well_behaved.yml", "wb")
        second = recording_of(watch.wait_said("following wb"))
        wait_for(lambda: ready(second, "talker", "listener"), 60, "first samples of wb")
        local_dora.stop_dataflow("wb", "2s")
        watch.wait_said("wb: stop recorded", 90)

        # a dataflow still running when the watch ends: not stopped, nothing recorded
        local_dora.start_dataflow(samples / "well_behaved.yml", "still")
        third = recording_of(watch.wait_said("following still"))
        wait_for(lambda: ready(third, "talker", "listener"), 60, "first samples of still")
    finally:
        code = watch.end()
    assert code == 0, "\n".join(watch.lines)
    assert watch.said("still: no stop seen while followed; nothing recorded")
    assert not third.exists()
    still = local_dora.node_pids("still")
    if set(still) != {"talker", "listener"}:  # say what dora shows, once more after a second
        listed = local_dora.cli("list", *local_dora.client.connection_args(), timeout=15.0)
        time.sleep(1.0)
        still = local_dora.node_pids("still")
        assert set(still) == {"talker", "listener"}, (listed.stdout, listed.stderr, watch.lines)
    assert watch.said("stopped watching: 2 stop(s) recorded")

    conn = sqlite3.connect(str(db))
    stops = conn.execute(
        "SELECT dataflow_name, kind, writer, grace_s FROM stops ORDER BY started_at"
    ).fetchall()
    assert [s[:3] for s in stops] == [("cleanup", "stop", "watch"), ("wb", "stop", "watch")]
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT node, outcome, censored, cause, stop_to_exit_s, samples, recording "
            "FROM node_stops"
        )
    }
    outcome, censored, cause, seconds, samples_n, path = rows["saver"]
    assert (outcome, censored, cause) == ("terminated", 1, "slow-shutdown")
    assert 1.9 <= seconds <= 3.0 and samples_n > 20
    assert Path(path) == first.resolve()
    for node in ("talker", "listener"):
        assert rows[node][:2] == ("clean", 0), rows[node]
        assert Path(rows[node][5]) == second.resolve()
    # the recordings read back, and `report` gives the same outcome
    for recording in (first, second):
        assert read_recording(recording).stacks
    baseline_then_full_rate(first, "saver")
    report = json.loads(run_doctor("report", str(first), "--json").stdout)
    (saver,) = report["dataflows"][0]["nodes"]
    assert (saver["outcome"], saver["cause"]) == ("terminated", "slow-shutdown")
    # and the history shows them
    shown = json.loads(run_doctor("history", "--db", str(db), "--json").stdout)
    assert shown["stops"] == 2 and {n["node"] for n in shown["nodes"]} == {
        "saver",
        "talker",
        "listener",
    }


def baseline_then_full_rate(path: Path, node: str) -> None:
    """The watch's recording has the light baseline before dora's stop line (stacks only, at
    the baseline rate) and full-rate stacks and GIL samples after it."""
    recording = read_recording(path)
    sampler = recording.header["sampler"]
    assert sampler["rate"] == 100
    baseline_rate = sampler["baseline_rate"]
    assert baseline_rate == 1
    stops = [e.time for e in recording.logs if e.kind == "stop-request"]
    assert stops, "dora's stop line is in the recording"
    stop = min(stops)
    stacks = [s for s in recording.stacks if s.node == node]
    before = [s for s in stacks if s.start < stop]
    after = [s for s in stacks if s.start >= stop]
    assert before and after
    # the baseline segment under way at the stop was ended and kept: it reaches past the stop
    assert max(s.end for s in before) >= stop
    baseline_ticks = sum(s.ticks for s in before)
    baseline_s = sum(s.end - s.start for s in before)
    # at most the baseline rate (+ py-spy's first sample of each segment)
    assert 0 < baseline_ticks <= baseline_rate * baseline_s + 2 * len(before)
    assert sum(s.ticks for s in after) > 20  # 100 Hz through a shutdown of about 2 s
    gil = [g for g in recording.gil if g.node == node]
    assert gil and all(g.start >= stop for g in gil)  # no GIL recorder in the baseline


def test_print_systemd_unit_runs_this_watch(tmp_path: Path) -> None:
    result = run_doctor("watch", "--print-systemd-unit", "--db", str(tmp_path / "h.sqlite3"))
    assert result.returncode == 0
    assert "[Service]" in result.stdout and "KillSignal=SIGTERM" in result.stdout
    exec_start = next(ln for ln in result.stdout.splitlines() if ln.startswith("ExecStart="))
    assert f"-m dora_doctor watch --db {tmp_path / 'h.sqlite3'}" in exec_start


def test_inspect_and_check_add_their_stops_and_no_history_does_not(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    local_dora.start_dataflow(samples / "slow_cleanup.yml", "inspected")
    local_dora.wait_running("inspected", nodes=1)
    args = ["--stop", "--grace-duration", "2s", "--stop-after", "2s", "--json", "--db", str(db)]
    result = run_doctor("inspect", "inspected", *args, env=local_dora.env)
    assert result.returncode == 0, result.stderr
    row = (
        sqlite3.connect(str(db))
        .execute(
            "SELECT s.dataflow_name, s.writer, s.requested_by, s.grace_s, n.outcome, n.cause "
            "FROM stops s JOIN node_stops n ON n.stop_id = s.id"
        )
        .fetchall()
    )
    assert row == [("inspected", "inspect", "dora-doctor", 2.0, "terminated", "slow-shutdown")]

    local_dora.start_dataflow(samples / "slow_cleanup.yml", "quiet")
    local_dora.wait_running("quiet", nodes=1)
    quiet = run_doctor("inspect", "quiet", *args, "--no-history", env=local_dora.env)
    assert quiet.returncode == 0, quiet.stderr
    assert sqlite3.connect(str(db)).execute("SELECT count(*) FROM stops").fetchone()[0] == 1

    checked = run_doctor(
        "check",
        str(samples / "well_behaved.yml"),
        "--grace",
        "5s",
        "--warmup",
        "2s",
        "--db",
        str(db),
        env=local_dora.env,
    )
    assert checked.returncode == 0, checked.stderr
    rows = (
        sqlite3.connect(str(db))
        .execute(
            "SELECT s.dataflow_name, s.writer, s.descriptor_hash IS NOT NULL, n.node, n.outcome "
            "FROM stops s JOIN node_stops n ON n.stop_id = s.id WHERE s.writer = 'check' "
            "ORDER BY n.node"
        )
        .fetchall()
    )
    assert rows == [
        ("well_behaved", "check", 1, "listener", "clean"),
        ("well_behaved", "check", 1, "talker", "clean"),
    ]
    grace = run_doctor(
        "tune-grace", str(samples / "well_behaved.yml"), "--from-history", "--db", str(db)
    )
    assert grace.returncode == 0, grace.stderr
    assert "Rests on 1 real stop(s) (2 node stops), no rehearsal." in grace.stdout


def test_a_dataflow_that_finishes_on_its_own_is_a_finish(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    # samples/nodes/exits_early.py, given time for the watch to attach first (8 s, not 3 s)
    early = (samples / "nodes" / "exits_early.py").read_text()
    assert "RUN_SECONDS = 3.0" in early
    (samples / "nodes" / "exits_later.py").write_text(
        early.replace("RUN_SECONDS = 3.0", "RUN_SECONDS = 8.0")
    )
    (samples / "finishes.yml").write_text(
        "nodes:\n  - id: brief\n    path: nodes/exits_later.py\n"
        "    inputs:\n      tick: dora/timer/millis/100\n"
    )
    db = tmp_path / "history.sqlite3"
    watch = Watch(local_dora.env, db)
    try:
        watch.wait_said("watching the coordinator")
        local_dora.start_dataflow(samples / "finishes.yml", "finishes")
        watch.wait_said("finishes: finish recorded", 90)
    finally:
        assert watch.end() == 0, "\n".join(watch.lines)
    row = (
        sqlite3.connect(str(db))
        .execute(
            "SELECT s.kind, s.requested_by, n.node, n.outcome, n.censored "
            "FROM stops s JOIN node_stops n ON n.stop_id = s.id"
        )
        .fetchall()
    )
    assert row == [("finish", None, "brief", "clean", 0)]


RESTARTS_ONCE = '''"""Ends by itself (exit 0) after 4 s on its first run only; its restart
runs until STOP."""
import os
import time

from dora import Node

FLAG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "restarted-once.flag")


def main() -> None:
    first = not os.path.exists(FLAG)
    if first:
        open(FLAG, "w").close()
    node = Node()
    started = time.monotonic()
    for event in node:
        if event["type"] == "STOP":
            break
        if first and time.monotonic() - started >= 4.0:
            break


if __name__ == "__main__":
    main()
'''

KINDS_YML = """nodes:
  - id: talker
    path: nodes/well_behaved.py
    inputs:
      tick: dora/timer/millis/100
    outputs:
      - count
  - id: deaf
    path: nodes/ignores_stop.py
    inputs:
      tick: dora/timer/millis/100
  - id: brief
    path: nodes/restarts_once.py
    restart_policy: always
    max_restarts: 1
    restart_delay: 0.5
    inputs:
      tick: dora/timer/millis/100
"""


def test_watch_records_node_stop_restarts_and_stops_each_once_with_its_kind(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """One dataflow through a node stop, a policy restart, a `dora node restart` and a stop
    with grace; a second one through a forced stop. Each is one history entry of its kind;
    the restarted processes are followed (their samples are in the final stop's entry)."""
    (samples / "nodes" / "restarts_once.py").write_text(RESTARTS_ONCE)
    (samples / "kinds.yml").write_text(KINDS_YML)
    db = tmp_path / "history.sqlite3"
    watch = Watch(local_dora.env, db)
    args = local_dora.client.connection_args()
    try:
        watch.wait_said("watching the coordinator")
        local_dora.start_dataflow(samples / "kinds.yml", "kinds")
        first = recording_of(watch.wait_said("following kinds ("))
        wait_for(lambda: ready(first, "talker", "deaf", "brief"), 60, "first samples of kinds")
        # brief ends by itself at 4 s and its policy restarts it
        watch.wait_said("kinds: restart of brief recorded", 60)
        brief = recording_of(watch.wait_said("following kinds: node brief restarted"))
        stopped = local_dora.cli("node", "stop", "deaf", "-d", "kinds", "--grace", "1s", *args)
        assert stopped.returncode == 0, stopped.stderr
        watch.wait_said("kinds: node-stop of deaf recorded", 60)
        restarted = local_dora.cli(
            "node", "restart", "talker", "-d", "kinds", "--grace", "1s", *args
        )
        assert restarted.returncode == 0, restarted.stderr
        watch.wait_said("kinds: restart of talker recorded", 60)
        again = recording_of(watch.wait_said("following kinds: node talker restarted"))
        wait_for(lambda: ready(again, "talker"), 60, "samples of talker's new process")
        wait_for(lambda: ready(brief, "brief"), 60, "samples of brief's new process")
        local_dora.stop_dataflow("kinds", "2s")
        watch.wait_said("kinds: stop recorded", 90)

        local_dora.start_dataflow(samples / "ignores_stop.yml", "forced")
        fourth = recording_of(watch.wait_said("following forced ("))
        wait_for(lambda: ready(fourth, "deaf"), 60, "first samples of forced")
        forced = local_dora.cli("stop", "forced", "--force", *args)
        assert forced.returncode in (0, 1), forced.stderr
        watch.wait_said("forced: stop recorded", 90)
    finally:
        code = watch.end()
    assert code == 0, "\n".join(watch.lines)
    # each restarted process is followed once, by its own PID
    followed = [line.split("(pid ")[1].split(")")[0] for line in watch.said("restarted (pid")]
    assert len(followed) == 2 and len(set(followed)) == 2, watch.lines
    conn = sqlite3.connect(str(db))
    stops = conn.execute(
        "SELECT s.dataflow_name, s.kind, "
        "group_concat(n.node || ':' || coalesce(n.outcome, 'unknown'), ' ') "
        "FROM stops s JOIN node_stops n ON n.stop_id = s.id GROUP BY s.id ORDER BY s.started_at"
    ).fetchall()
    assert [(name, kind) for name, kind, _ in stops] == [
        ("kinds", "restart"),
        ("kinds", "node-stop"),
        ("kinds", "restart"),
        ("kinds", "stop"),
        ("forced", "stop"),
    ], stops
    outcomes = [dict(pair.split(":") for pair in nodes.split()) for _, _, nodes in stops]
    # a clean exit is the one end dora's daemon does not log: only the exit status, when the
    # stop watch read it from /proc before dora reaped the process (a race), shows it clean
    assert outcomes[0] == {"brief": _by_exit_status(conn, "brief")}, stops
    assert outcomes[1] == {"deaf": "terminated"}  # ignores STOP: SIGTERM at the 1 s grace
    # talker reacts to STOP: gone before the SIGTERM at the 1 s grace, with no line from dora
    # (a clean exit is not logged, and the dataflow ran on): unknown, or clean by its status
    assert outcomes[2] == {"talker": _by_exit_status(conn, "talker")}, stops
    reacted = conn.execute(
        "SELECT n.stop_to_exit_s FROM node_stops n JOIN stops s ON n.stop_id = s.id "
        "WHERE s.kind = 'restart' AND n.node = 'talker'"
    ).fetchone()[0]
    assert reacted is not None and reacted < 1.0, reacted
    assert outcomes[3] == {"talker": "clean", "brief": "clean"}, stops  # the new processes
    assert set(outcomes[4]) == {"deaf"} and outcomes[4]["deaf"] in ("terminated", "killed"), stops
    samples_of = dict(
        conn.execute(
            "SELECT n.node, n.samples FROM node_stops n JOIN stops s ON n.stop_id = s.id "
            "WHERE s.kind = 'stop' AND s.dataflow_name = 'kinds'"
        ).fetchall()
    )
    assert samples_of["talker"] and samples_of["brief"], samples_of


def test_followers_and_their_py_spy_end_when_the_watch_is_killed(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """SIGKILL leaves the watch no cleanup: its followers see their parent die and end on
    their own (with their py-spy), and the dataflow runs on untouched."""
    import psutil

    local_dora.start_dataflow(samples / "well_behaved.yml", "orphaned")
    nodes = local_dora.wait_running("orphaned", nodes=2)
    watch = Watch(local_dora.env, tmp_path / "history.sqlite3")
    try:
        recording = recording_of(watch.wait_said("following orphaned"))
        wait_for(lambda: ready(recording, "talker", "listener"), 60, "first samples")
        ours = psutil.Process(watch.proc.pid).children(recursive=True)
        names = {p.name() for p in ours}
        assert any("py-spy" in n for n in names), names  # the followers' samplers run
        watch.proc.kill()
        watch.proc.wait(10)

        def running() -> List[str]:
            left = []
            for proc in ours:
                try:
                    if proc.status() != psutil.STATUS_ZOMBIE:  # no one may reap an orphan
                        left.append(f"{proc.pid} {proc.name()}")
                except psutil.NoSuchProcess:
                    continue
            return left

        wait_for(lambda: not running(), 20, "the followers and their py-spy to end")
        # the nodes never were stopped or paused, and run on
        for pid in nodes.values():
            assert psutil.Process(pid).status() not in (
                psutil.STATUS_STOPPED,
                psutil.STATUS_TRACING_STOP,
                psutil.STATUS_ZOMBIE,
            )
        assert local_dora.node_pids("orphaned") == nodes
    finally:
        if watch.proc.poll() is None:
            watch.proc.kill()
        watch.proc.wait(10)


def test_on_a_tty_a_live_status_line_counts_what_is_followed(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """In a terminal the watch keeps one status line (dataflows, nodes, stops, last stop),
    redrawn in place; its log lines still come above it."""
    import os
    import pty
    import time

    local_dora.start_dataflow(samples / "well_behaved.yml", "tty")
    local_dora.wait_running("tty", nodes=2)
    env = {**local_dora.env, "COLUMNS": "200", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dora_doctor",
            "watch",
            "--db",
            str(tmp_path / "h.sqlite3"),
            "--poll",
            "0.5s",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"following 1 dataflow(s), 2 node(s); 0 stop(s) recorded" not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")[-2000:]
            try:
                seen += os.read(leader, 65536)
            except OSError:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(90)
        try:
            while True:
                more = os.read(leader, 65536)
                if not more:
                    break
                seen += more
        except OSError:
            pass
        os.close(leader)
    shown = seen.decode(errors="replace")
    assert code == 0, shown[-2000:]
    assert "following tty (" in shown  # the plain lines still come
    assert "\r" in shown or "\x1b[" in shown  # the status line is redrawn in place


STARTUP_KILL_YML = """nodes:
  - id: stuck
    path: nodes/never_registers.py
    startup_timeout: 3
    inputs:
      tick: dora/timer/millis/100
"""

HEALTH_KILL_YML = """health_check_interval: 1
nodes:
  - id: talker
    path: nodes/well_behaved.py
    inputs:
      tick: dora/timer/millis/100
    outputs:
      - count
  - id: deaf
    path: nodes/ignores_stop.py
    health_check_timeout: 3
    inputs:
      tick: dora/timer/millis/100
"""


def test_watch_records_startup_and_health_kills_with_their_kind(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """dora's own kills, no stop request: a node that never connects is killed by its
    ``startup_timeout`` (the whole dataflow ends: one `startup-kill` entry, the node
    `killed` while `starting`, as dora's line says it never connected); a node that only
    receives is killed by the health check while its peer runs on (its own `health-kill`
    entry). Both dataflows run at once under one watch, to keep the test short."""
    (samples / "startup_kill.yml").write_text(STARTUP_KILL_YML)
    (samples / "health_kill.yml").write_text(HEALTH_KILL_YML)
    db = tmp_path / "history.sqlite3"
    watch = Watch(local_dora.env, db)
    try:
        watch.wait_said("watching the coordinator")
        local_dora.start_dataflow(samples / "startup_kill.yml", "st")
        local_dora.start_dataflow(samples / "health_kill.yml", "hc")
        watch.wait_said("st: startup-kill recorded", 90)
        watch.wait_said("hc: health-kill of deaf recorded", 90)
        local_dora.stop_dataflow("hc", "2s")
        watch.wait_said("hc: stop recorded", 90)
    finally:
        code = watch.end()
    assert code == 0, "\n".join(watch.lines)
    conn = sqlite3.connect(str(db))
    rows = conn.execute(
        "SELECT s.dataflow_name, s.kind, n.node, n.outcome, n.cause, n.samples "
        "FROM stops s JOIN node_stops n ON n.stop_id = s.id ORDER BY s.started_at, n.node"
    ).fetchall()
    by = {(r[0], r[1], r[2]): r[3:] for r in rows}
    outcome, cause, sampled = by[("st", "startup-kill", "stuck")]
    assert (outcome, cause) == ("killed", "starting"), rows
    assert sampled, rows  # it was sampled while it started
    # one entry of its own, with deaf only: talker ran on
    assert by[("hc", "health-kill", "deaf")][0] == "killed", rows
    assert {r[2] for r in rows if r[:2] == ("hc", "health-kill")} == {"deaf"}, rows
    assert {r[2] for r in rows if r[:2] == ("hc", "stop")} == {"talker"}, rows
    assert len(rows) == 3, rows


def test_dora_down_under_watch_is_recorded_and_the_watch_follows_the_next_dora(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """The daemon is SIGKILLed while a dataflow runs: the watch records a `dora-down` entry
    with what it saw (a node that died with it, one left running, orphaned), says so, never
    touches the orphan, and follows the dataflows of a new daemon on the same coordinator."""
    import psutil

    from dora_doctor.dora import versions
    from dora_doctor.dora.discover import process_running

    db = tmp_path / "history.sqlite3"
    local_dora.start_dataflow(samples / "well_behaved.yml", "wb")
    pids = local_dora.wait_running("wb", nodes=2)
    watch = Watch(local_dora.env, db)
    try:
        first = recording_of(watch.wait_said("following wb ("))
        wait_for(lambda: ready(first, "talker", "listener"), 60, "first samples of wb")
        daemon = local_dora._daemon
        assert daemon is not None
        daemon.kill()
        daemon.wait(10)
        said = watch.wait_said("while it ran; the watch goes on", 60)
        # the follower saw the daemon's process end (or, later, the coordinator's word)
        assert said.split(" ", 1)[1].startswith(
            ("wb: dora's daemon exited", "wb: the coordinator lost every daemon")
        ), said
        watch.wait_said("wb: dora-down recorded", 30)
        orphans = [p for p in pids.values() if process_running(p)]
        # a new daemon on the same coordinator: the watch says so and follows its dataflows
        local_dora._daemon = local_dora._spawn(
            "daemon",
            versions.daemon_args(
                local_dora.version,
                local_dora.daemon_port or local_dora.coordinator_port,
                local_dora.daemon_listen_port,
            ),
        )
        watch.wait_said("dora's daemon answers again", 60)
        local_dora.start_dataflow(samples / "well_behaved.yml", "wb2")
        second = recording_of(watch.wait_said("following wb2 (", 60))
        # the watch never signalled the nodes dora left behind
        assert all(process_running(pid) for pid in orphans), orphans
        wait_for(lambda: ready(second, "talker", "listener"), 60, "first samples of wb2")
        # the coordinator is killed and comes back on its port (its store brings wb2 back;
        # the daemon reconnects): the watch says so, goes on, and records wb2's stop later
        coordinator = local_dora._coordinator
        assert coordinator is not None
        coordinator.kill()
        coordinator.wait(10)
        watch.wait_said("cannot list dataflows", 30)
        local_dora._coordinator = local_dora._spawn(
            "coordinator",
            versions.coordinator_args(
                local_dora.version,
                local_dora.daemon_port or local_dora.coordinator_port,
                local_dora.coordinator_port,
                local_dora.workdir / "coordinator.redb",
            ),
        )
        watch.wait_said("the coordinator answers again", 60)

        def listed_again() -> bool:
            try:
                return len(local_dora.node_pids("wb2")) == 2
            except Exception:  # the new coordinator may not answer for the nodes yet
                return False

        wait_for(listed_again, 60, "wb2's nodes listed again")
        local_dora.stop_dataflow("wb2", "2s")
        watch.wait_said("wb2: stop recorded", 90)
    finally:
        code = watch.end()
        for pid in pids.values():  # the test's own cleanup of dora's orphans
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
    assert code == 0, "\n".join(watch.lines)
    conn = sqlite3.connect(str(db))
    rows = conn.execute(
        "SELECT s.dataflow_name, s.kind, n.node, coalesce(n.outcome, 'unknown') "
        "FROM stops s JOIN node_stops n ON n.stop_id = s.id ORDER BY n.node"
    ).fetchall()
    assert {r[:2] for r in rows} == {("wb", "dora-down"), ("wb2", "stop")}, rows
    assert {r[2]: r[3] for r in rows if r[0] == "wb2"} == {"talker": "clean", "listener": "clean"}
    outcomes = {r[2]: r[3] for r in rows if r[0] == "wb"}
    # every node appears; one left alive is `running`, one gone has no word on how it ended
    # but its exit status, when that was read before the process was reaped
    assert set(outcomes) == {"talker", "listener"}, rows
    assert all(
        outcomes[n] == ("running" if pids[n] in orphans else _by_exit_status(conn, n, "wb"))
        for n in outcomes
    ), (rows, orphans)


FINISH_DRAIN_YML = """nodes:
  - id: sender
    path: nodes/sends_then_ends.py
    inputs:
      tick: dora/timer/millis/100
    outputs:
      - count
  - id: deaf
    path: nodes/ignores_stop.py
    finish_grace_secs: 1
    inputs:
      count: sender/count
"""


def test_a_node_the_finish_drain_stops_is_a_finish_terminated_by_it(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """sender ends after 3 s; deaf, whose inputs all closed, never reads a thing, so dora's
    finish drain escalates its stop after its finish grace (1 s, checked every 5 s) and
    SIGTERMs it 10 s later: one `finish` entry in which deaf was terminated by the drain."""
    fixture = Path(__file__).parent / "fixtures" / "dora-1.1.0" / "stop-kinds" / "finish-drain"
    (samples / "nodes" / "sends_then_ends.py").write_text(
        (fixture / "sends_then_ends.py").read_text()
    )
    (samples / "finish_drain.yml").write_text(FINISH_DRAIN_YML)
    db = tmp_path / "history.sqlite3"
    watch = Watch(local_dora.env, db)
    try:
        watch.wait_said("watching the coordinator")
        local_dora.start_dataflow(samples / "finish_drain.yml", "fd")
        watch.wait_said("fd: finish recorded", 120)
    finally:
        code = watch.end()
    assert code == 0, "\n".join(watch.lines)
    rows = (
        sqlite3.connect(str(db))
        .execute(
            "SELECT s.kind, s.requested_by, n.node, n.outcome, n.stop_to_exit_s, n.cause "
            "FROM stops s JOIN node_stops n ON n.stop_id = s.id WHERE n.node = 'deaf'"
        )
        .fetchall()
    )
    assert len(rows) == 1, rows
    kind, by, _, outcome, seconds, cause = rows[0]
    assert (kind, by, outcome) == ("finish", "dora's finish drain", "terminated"), rows
    # SIGTERM at dora's 10 s grace after the escalation; it never read STOP
    assert seconds is not None and 9.5 <= seconds <= 10.5, rows
    assert cause == "stuck", rows
