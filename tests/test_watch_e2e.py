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
from pathlib import Path
from typing import List

import pytest
from helpers import run_doctor, wait_for

from dora_doctor.dora.private import LocalDora
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
        found = wait_for(lambda: self.said(text), timeout, f"watch to say {text!r}")
        return found[0]

    def end(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(90)
        self.reader.join(5)
        return code


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
                sampled.add(json.loads(line)["node"])
            except (ValueError, KeyError):
                continue  # a line the follower is still writing
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
    assert set(local_dora.node_pids("still")) == {"talker", "listener"}  # never stopped
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
