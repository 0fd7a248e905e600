"""The history DB: schema and migrations, idempotent imports of real logs, the per-node
summary with censoring, the grace from real stops, and safety (two writers, SIGKILLed
writers, a DB that cannot be written)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from helpers import run_doctor

from dora_doctor.history import query, store, summary, write
from dora_doctor.history.store import NodeStopRow, NodeStopView, StopRow

FIX = Path(__file__).parent / "fixtures"
V110 = FIX / "dora-1.1.0"
V0313 = FIX / "dora-0.3.13"


def a_stop(i: int, nodes: int = 3, name: str = "robot", seconds: float = 1.0) -> StopRow:
    stop = StopRow(
        dataflow_uuid=f"01a21300-0000-0000-0000-{i:012d}",
        dataflow_name=name,
        kind="stop",
        writer="test",
        started_at=1_700_000_000.0 + 10 * i,
        grace_s=2.0,
    )
    stop.nodes = [
        NodeStopRow(f"node{n}", "clean", seconds + n * 0.1, False, "none") for n in range(nodes)
    ]
    return stop


def view(
    seconds: Optional[float], outcome: str = "clean", at: float = 0.0, node: str = "n"
) -> NodeStopView:
    return NodeStopView(
        dataflow_uuid="u",
        dataflow_name="robot",
        descriptor_hash=None,
        machine=None,
        kind="stop",
        grace_s=2.0,
        started_at=at,
        node=node,
        outcome=outcome,
        stop_to_exit_s=seconds,
        censored=outcome in ("terminated", "killed", "running"),
        cause=None,
        holder=None,
        recording=None,
    )


def test_a_new_db_is_migrated_to_the_last_schema_in_wal_mode(tmp_path: Path) -> None:
    db = store.connect(tmp_path / "deep" / "h.sqlite3")
    assert store.schema_version(db) == store.SCHEMA_VERSION == len(store.MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    versions = [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, store.SCHEMA_VERSION + 1))


def test_an_older_schema_is_upgraded_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    old = sqlite3.connect(str(path), isolation_level=None)
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    store.MIGRATIONS[0](old)
    old.execute("INSERT INTO schema_version VALUES (1)")
    old.execute(
        "INSERT INTO stops (id, stop_key, dataflow_uuid, dataflow_name, machine, kind, "
        "started_at, recorded_at, writer) VALUES (7, 'k', 'u', 'arm', 'A', 'stop', 5.0, 6.0, 't')"
    )
    old.execute("INSERT INTO node_stops (stop_id, node, outcome) VALUES (7, 'gripper', 'clean')")
    old.close()
    db = store.connect(path)
    assert store.add_stop(db, a_stop(1))
    assert store.schema_version(db) == store.SCHEMA_VERSION
    # schema 3 gave the old row its dataflow, time and machine from its stop
    assert db.execute(
        "SELECT dataflow, started_at, machine FROM node_stops WHERE node = 'gripper'"
    ).fetchone() == ("arm", 5.0, "A")
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "node_stops_node" in indexes


def test_a_newer_schema_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store.connect(path).execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(sqlite3.DatabaseError, match="newer dora-doctor"):
        store.connect(path)
    result = run_doctor("history", "--db", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "newer dora-doctor" in result.stderr


def test_a_file_that_is_no_history_is_one_line(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(str(other)).execute("CREATE TABLE t (x)")
    result = run_doctor("history", "--db", str(other))
    assert result.returncode == 2 and "not a dora-doctor history" in result.stderr
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    result = run_doctor("history", "--db", str(text))
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_the_same_stop_twice_is_one_stop(tmp_path: Path) -> None:
    db = store.connect(tmp_path / "h.sqlite3")
    assert store.add_stop(db, a_stop(1))
    assert not store.add_stop(db, a_stop(1))
    near = a_stop(1)
    assert near.started_at is not None
    near.started_at += 0.4  # the same stop seen by inspect and in the coordinator's log
    assert not store.add_stop(db, near)
    assert db.execute("SELECT count(*) FROM node_stops").fetchone()[0] == 3


def test_the_default_db_is_under_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert store.default_path() == tmp_path / "dora-doctor" / "history.sqlite3"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/is/ignored")  # the XDG spec says so
    assert store.default_path() == Path.home() / ".local/share/dora-doctor/history.sqlite3"


def test_import_of_real_logs_twice_adds_nothing_the_second_time(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    first = run_doctor("history", "import", str(V110), str(V0313), "--db", str(db))
    assert first.returncode == 0, first.stderr
    added = int(first.stdout.split("imported ")[1].split()[0])
    assert added >= 20
    again = run_doctor("history", "import", str(V110), str(V0313), "--db", str(db))
    assert again.returncode == 0 and "imported 0 new stop(s)" in again.stdout
    conn = sqlite3.connect(str(db))
    assert conn.execute("SELECT count(*) FROM stops").fetchone()[0] == added
    # the 1.1.0 detached stop: the nodes dora terminated are censored, the clean ones not
    shown = json.loads(run_doctor("history", "--db", str(db), "--json").stdout)
    assert shown["schema"] == "dora-doctor.history/1" and shown["stops"] == added
    sleeper = next(n for n in shown["nodes"] if n["node"] == "sleeper")
    assert sleeper["outcomes"].get("killed", 0) >= 2 and sleeper["max"]["at_least"] is True
    talker = next(n for n in shown["nodes"] if n["node"] == "talker")
    assert set(talker["outcomes"]) == {"clean"}


def test_postmortem_adds_to_the_history_and_no_history_does_not(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    logs = str(V110 / "detached-stop-grace-2s")
    skipped = run_doctor("postmortem", logs, "--db", str(db), "--no-history")
    assert skipped.returncode == 0 and not db.exists()
    done = run_doctor("postmortem", logs, "--db", str(db))
    assert done.returncode == 0, done.stderr
    rows = sqlite3.connect(str(db)).execute(
        "SELECT n.node, n.outcome, n.censored, s.grace_s, s.kind, s.requested_by, s.writer "
        "FROM node_stops n JOIN stops s ON s.id = n.stop_id"
    )
    found = {r[0]: r[1:] for r in rows}
    assert found["crunch"] == ("terminated", 1, 2.0, "stop", "dora stop", "postmortem")
    assert found["sleeper"][:2] == ("killed", 1)
    assert found["talker"][:2] == ("clean", 0)


def test_percentiles_say_at_least_when_a_censored_stop_is_at_or_below_them() -> None:
    timed = [(1.0, False), (1.2, False), (1.1, False), (2.0, True)]
    assert summary.bounded_percentile(timed, 50) == summary.Bound(1.1, False)
    assert summary.bounded_percentile(timed, 95) == summary.Bound(2.0, True)
    assert summary.bounded_percentile([(0.5, True), (3.0, False)], 100) == (
        summary.Bound(3.0, True)
    )
    assert summary.bounded_percentile([], 50) is None
    assert [summary.rank(95, n) for n in (1, 19, 20, 21, 100)] == [1, 19, 19, 20, 95]


def history_of(path: Path, nodes: Dict[str, List[Tuple[Optional[float], str]]]) -> None:
    """One stop per index, each node's (stop→exit, outcome) at that index."""
    db = store.connect(path)
    longest = max(len(v) for v in nodes.values())
    for i in range(longest):
        stop = a_stop(i, nodes=0)
        for name, values in nodes.items():
            if i < len(values):
                seconds, outcome = values[i]
                censored = outcome in ("terminated", "killed", "running")
                stop.nodes.append(NodeStopRow(name, outcome, seconds, censored, "none"))
        store.add_stop(db, stop)
    db.close()


def test_sql_percentiles_are_the_nearest_rank_ones(tmp_path: Path) -> None:
    rng = random.Random(3)
    values = [
        (round(rng.uniform(0.1, 5.0), 3), rng.choice(["clean"] * 5 + ["terminated"]))
        for _ in range(137)
    ]
    with_unknown = values + [(None, "running")]
    history_of(tmp_path / "h.sqlite3", {"n": list(with_unknown)})
    (found,) = query.summarise([tmp_path / "h.sqlite3"]).nodes
    timed = [(s, o == "terminated") for s, o in values]
    assert found.p50 == summary.bounded_percentile(timed, 50)
    assert found.p95 == summary.bounded_percentile(timed, 95)
    assert found.max == summary.bounded_percentile(timed, 100)
    assert found.stops == 138 and found.outcomes["running"] == 1


def test_a_slower_recent_p95_is_a_regression_and_comes_first(tmp_path: Path) -> None:
    history_of(
        tmp_path / "h.sqlite3",
        {
            "steady": [(1.0 + (i % 3) * 0.05, "clean") for i in range(40)],
            "slower": [(1.0, "clean")] * 20 + [(2.0, "clean")] * 20,
        },
    )
    result = query.summarise([tmp_path / "h.sqlite3"])
    assert [n.node for n in result.nodes] == ["slower", "steady"]
    assert result.nodes[0].regression is not None
    assert "2.0 × the 1.00 s of the 20 before" in result.nodes[0].regression
    assert result.nodes[1].regression is None
    assert result.nodes[0].trend == [2.0] * 20
    shown = run_doctor("history", "--db", str(tmp_path / "h.sqlite3"))
    assert shown.stdout.startswith("Regression: robot/slower: stop→exit grew")


def test_a_node_newly_ended_by_dora_is_a_regression(tmp_path: Path) -> None:
    history_of(tmp_path / "h.sqlite3", {"n": [(1.0, "clean")] * 10 + [(2.0, "terminated")]})
    (found,) = query.summarise([tmp_path / "h.sqlite3"]).nodes
    assert found.regression is not None
    assert found.regression.startswith("newly ended by dora: 1 of the last 6 stops")
    history_of(tmp_path / "few.sqlite3", {"n": [(1.0, "clean")] * 3 + [(2.0, "terminated")]})
    (few,) = query.summarise([tmp_path / "few.sqlite3"]).nodes
    assert few.regression is None  # too few stops before to say it is new


def test_grace_from_history_follows_the_censoring_rules(tmp_path: Path) -> None:
    clean = [view(1.0 + i * 0.01, at=i) for i in range(10)]
    found = summary.suggest_grace(clean, "robot", 1.5)
    assert found.suggestion.grace_s == 2.0 and found.node_stops == 10
    assert "max of the slowest node (n, 1.09 s over 10 runs)" in found.suggestion.reason
    ended = clean + [view(2.0, "terminated", at=11)]
    withheld = summary.suggest_grace(ended, "robot", 1.5).suggestion
    assert withheld.grace_s is None and "≥ 2.00 s" in withheld.reason


def test_tune_grace_from_history_says_what_it_rests_on(tmp_path: Path) -> None:
    db = store.connect(tmp_path / "h.sqlite3")
    for i in range(12):
        store.add_stop(db, a_stop(i, seconds=1.0 + i * 0.05))
    db.close()
    result = run_doctor(
        "tune-grace", "robot", "--from-history", "--db", str(tmp_path / "h.sqlite3"), "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["stops"] == 12 and data["node_stops"] == 36
    # slowest: node2 at 1.0 + 11 × 0.05 + 0.2 = 1.75 s, × 1.5 = 2.625 → 3 s
    assert data["suggestion"]["grace_s"] == 3.0
    text = run_doctor("tune-grace", "robot", "--from-history", "--db", str(tmp_path / "h.sqlite3"))
    assert "Rests on 12 real stop(s)" in text.stdout
    none = run_doctor("tune-grace", "other", "--from-history", "--db", str(tmp_path / "h.sqlite3"))
    assert none.returncode == 1 and "no stops of other" in none.stderr


def test_since_and_node_and_several_dbs(tmp_path: Path) -> None:
    a, b = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    for path, machine in ((a, "A"), (b, "B")):
        db = store.connect(path)
        for i in range(3):
            stop = a_stop(i)
            stop.machine = machine
            store.add_stop(db, stop)
        recent = a_stop(100)
        recent.machine, recent.started_at = machine, time.time() - 3600
        store.add_stop(db, recent)
        db.close()
    both = json.loads(run_doctor("history", "--db", str(a), "--db", str(b), "--json").stdout)
    assert both["stops"] == 8 and both["node_stops"] == 24
    assert next(n for n in both["nodes"] if n["node"] == "node0")["machines"] == ["A", "B"]
    day = run_doctor("history", "--db", str(a), "--db", str(b), "--since", "1d", "--json")
    assert json.loads(day.stdout)["stops"] == 2
    one = run_doctor("history", "robot", "--node", "node1", "--db", str(a), "--json")
    assert [n["node"] for n in json.loads(one.stdout)["nodes"]] == ["node1"]
    bad = run_doctor("history", "--since", "soon", "--db", str(a))
    assert bad.returncode == 2 and "not an age" in bad.stderr


def test_prune_keeps_recent_stops_and_caps_only_its_own_recordings(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    db = store.connect(path)
    store.add_stop(db, a_stop(1))  # 2023: old
    recent = a_stop(2)
    recent.started_at = time.time() - 60
    own = store.recordings_dir(path)
    own.mkdir()
    for i in range(3):
        (own / f"r{i}.ddrec").write_bytes(b"x" * 1000)
        os.utime(own / f"r{i}.ddrec", (1000 + i, 1000 + i))
    recent.nodes[0].recording = str(own / "r0.ddrec")
    store.add_stop(db, recent)
    db.close()
    users = tmp_path / "mine.ddrec"
    users.write_bytes(b"y" * 5000)
    result = run_doctor(
        "history", "prune", "--keep", "90d", "--max-recordings", "1.5K", "--db", str(path)
    )
    assert result.returncode == 0, result.stderr
    assert "deleted 1 stop(s)" in result.stdout and "deleted 2 recording(s)" in result.stdout
    assert sorted(p.name for p in own.iterdir()) == ["r2.ddrec"] and users.exists()
    conn = sqlite3.connect(str(path))
    assert conn.execute("SELECT count(*) FROM stops").fetchone()[0] == 1
    assert (
        conn.execute("SELECT count(*) FROM node_stops WHERE recording IS NOT NULL").fetchone()[0]
        == 0
    )


WRITER = """
import sys
from dora_doctor.history import store
from dora_doctor.history.store import NodeStopRow, StopRow
db = store.connect(__import__("pathlib").Path(sys.argv[1]))
first, count = int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
for i in range(first, first + count):
    stop = StopRow("df-%d" % i, "stop", "test", 1.0e9 + 10 * i, dataflow_name="robot")
    stop.nodes = [NodeStopRow("node%d" % n, "clean", 1.0, False, "x" * 200) for n in range(8)]
    store.add_stop(db, stop)
    print(i, flush=True)
"""


def start_writer(path: Path, first: int, count: int) -> "subprocess.Popen[str]":
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(first), str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def finish(proc: "subprocess.Popen[str]") -> str:
    """The rest of a writer's output (read through the same buffer as its ready line)."""
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait(timeout=120)
    return out


def test_two_writers_at_once_wait_for_each_other(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    writers = [start_writer(path, 0, 300), start_writer(path, 1000, 300)]
    for proc in writers:
        out = finish(proc)
        assert proc.returncode == 0
        assert len(out.split()) == 300
    db = sqlite3.connect(str(path))
    assert db.execute("SELECT count(*) FROM stops").fetchone()[0] == 600
    assert db.execute("SELECT count(*) FROM node_stops").fetchone()[0] == 4800


def test_a_writer_sigkilled_20_times_leaves_an_intact_db_missing_at_most_one_stop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.sqlite3"
    random.seed(15)
    acknowledged: List[int] = []
    for round_ in range(20):
        proc = start_writer(path, round_ * 100_000, 100_000)
        time.sleep(random.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        out = finish(proc)
        assert proc.returncode == -signal.SIGKILL
        acknowledged.extend(int(x) for x in out.split())
        db = sqlite3.connect(str(path))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in db.execute("SELECT dataflow_uuid FROM stops")}
        # every stop the writer saw committed is there; at most the one in progress beyond
        assert {f"df-{i}" for i in acknowledged} <= stored
        assert len(stored) - len(acknowledged) <= round_ + 1
        # and every stop is whole: a transaction per stop
        partial = db.execute(
            "SELECT count(*) FROM stops s WHERE (SELECT count(*) FROM node_stops n "
            "WHERE n.stop_id = s.id) != 8"
        ).fetchone()[0]
        assert partial == 0
        db.close()
    assert len(acknowledged) > 20  # the kills came during writes, not before the first


def immutable(path: Path, on: bool) -> bool:
    """Make a path unwritable even for root (chattr +i); False where that is not possible."""
    if os.geteuid() != 0:
        os.chmod(path, 0o555 if on and path.is_dir() else (0o444 if on else 0o755))
        return True
    done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True)
    return done.returncode == 0


def test_an_unwritable_history_is_one_line_and_the_report_still_comes(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    path = folder / "h.sqlite3"
    db = store.connect(path)
    store.add_stop(db, a_stop(1))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for leftover in folder.glob("h.sqlite3-*"):
        leftover.unlink()
    if not (immutable(path, True) and immutable(folder, True)):
        pytest.skip("cannot make a path read-only here (no chattr)")
    try:
        logs = str(V110 / "detached-stop-grace-2s")
        result = run_doctor("postmortem", logs, "--db", str(path), "--json")
        assert result.returncode == 0
        assert json.loads(result.stdout)["dataflows"]
        warnings = [line for line in result.stderr.splitlines() if "history" in line]
        assert len(warnings) == 1 and warnings[0].startswith(
            f"dora-doctor: warning: history not written to {path}"
        )
        shown = run_doctor("history", "--db", str(path), "--json")  # reading still works
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["stops"] == 1
    finally:
        immutable(folder, False)
        immutable(path, False)


def test_a_full_disk_is_one_line_and_loses_only_that_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.sqlite3"
    assert write.add_stops([a_stop(0)], path) == 1
    pages = sqlite3.connect(str(path)).execute("PRAGMA page_count").fetchone()[0]
    capsys.readouterr()
    big = [a_stop(i, nodes=400) for i in range(1, 4)]
    assert write.add_stops(big, path, max_page_count=pages + 2) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "database or disk is full" in err
    db = sqlite3.connect(str(path))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM stops").fetchone()[0] == 1


def a_follower(recording: Path) -> "object":
    from dora_doctor.capture.watcher import Follower
    from dora_doctor.recording.reader import read_recording

    done = subprocess.Popen(["true"])
    done.wait()
    return Follower(read_recording(recording).dataflows[0], recording, done)


def test_watch_records_a_followed_stop_and_drops_a_recording_without_one(tmp_path: Path) -> None:
    """What the watcher does when a follower ends, on a real recording (saver, dora 1.1.0)."""
    import shutil

    from dora_doctor.capture.watcher import Watcher, WatchOptions
    from dora_doctor.model import Dataflow, NodeProcess
    from dora_doctor.recording.codec import make_header
    from dora_doctor.recording.writer import RecordingWriter

    db = tmp_path / "h.sqlite3"
    said: List[str] = []
    watcher = Watcher(None, WatchOptions(db=db), said.append)  # type: ignore[arg-type]
    kept = store.recordings_dir(db) / "saver.ddrec"
    kept.parent.mkdir(parents=True)
    shutil.copy(FIX / "recordings" / "saver.ddrec", kept)
    watcher._record(a_follower(kept))  # type: ignore[arg-type]
    assert said[-1].startswith("saver: stop recorded: saver terminated ≥ 2.")
    assert "(slow-shutdown)" in said[-1] and kept.exists()
    row = (
        sqlite3.connect(str(db))
        .execute(
            "SELECT s.writer, n.outcome, n.cause, n.recording FROM stops s "
            "JOIN node_stops n ON n.stop_id = s.id"
        )
        .fetchone()
    )
    assert row == ("watch", "terminated", "slow-shutdown", str(kept.resolve()))

    empty = store.recordings_dir(db) / "running.ddrec"
    dataflow = Dataflow("01a21300-0000-7000-8000-000000000001", "running", "running")
    dataflow.nodes = [NodeProcess("n", dataflow.uuid, pid=1)]
    RecordingWriter(empty, make_header([dataflow], "1.1.0", {"rate": 50})).close()
    watcher._record(a_follower(empty))  # type: ignore[arg-type]
    assert said[-1] == "running: no stop seen while followed; nothing recorded"
    assert not empty.exists()


def test_watch_goes_on_when_the_history_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from dora_doctor.capture.watcher import Watcher, WatchOptions

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the DB's directory should be\\n")
    said: List[str] = []
    options = WatchOptions(db=blocker / "h.sqlite3", recordings=tmp_path / "recordings")
    watcher = Watcher(None, options, said.append)  # type: ignore[arg-type]
    options.recordings.mkdir()  # type: ignore[union-attr]
    kept = tmp_path / "recordings" / "saver.ddrec"
    shutil.copy(FIX / "recordings" / "saver.ddrec", kept)
    watcher._record(a_follower(kept))  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "history not written" in err
    assert said[-1].startswith(
        "saver: stop recording kept, the history could not be written: saver terminated"
    )
    assert kept.exists() and watcher.stops_recorded == 0
    watcher.db = tmp_path / "h.sqlite3"
    watcher._record(a_follower(kept))  # type: ignore[arg-type]
    watcher._record(a_follower(kept))  # type: ignore[arg-type]
    assert said[-2].startswith("saver: stop recorded: ")
    assert said[-1].startswith("saver: stop already in the history: ")
    assert watcher.stops_recorded == 1


def test_html_chart_marks_ended_stops_draws_the_grace_and_escapes_names(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    history_of(
        db,
        {
            "<b>cam</b>": [(1.0, "clean")] * 10 + [(2.0, "terminated")] + [(3.0, "killed")],
        },
    )
    page = tmp_path / "h.html"
    result = run_doctor("history", "--db", str(db), "--html", str(page))
    assert result.returncode == 0, result.stderr
    text = page.read_text()
    assert "<b>cam</b>" not in text and "&lt;b&gt;cam&lt;/b&gt;" in text
    assert text.count("<circle") == 10 and text.count("class='censored'") == 2
    assert "stroke-dasharray" in text  # the grace, 2 s at every stop
    assert "<script" not in text and "http" not in text
    assert "Regression: robot/&lt;b&gt;cam&lt;/b&gt;: newly ended by dora" in text
    again = run_doctor("history", "--db", str(db), "--html", str(page))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_the_history_never_holds_the_values_of_local_variables(tmp_path: Path) -> None:
    """Even from a diagnosis that shows them (report --show-locals), only names and numbers
    reach the DB: the values are looked for in the file's bytes."""
    from dora_doctor import model
    from dora_doctor.analysis import diagnose
    from dora_doctor.recording.reader import read_recording

    recording = read_recording(FIX / "recordings" / "saver.ddrec")
    dataflow = recording.dataflows[0]
    value = '"hunter2-secret-value"'
    thread = model.ThreadLocals(
        1,
        "MainThread",
        [model.FrameLocals("save", "saver.py", 3, [model.LocalVar("pw", False, value)])],
    )
    start = min(s.start for s in recording.stacks)
    recording.locals.append(
        model.LocalsSnapshot(dataflow.uuid, "saver", 1, start + 1, model.LOCALS_AT_STOP, [thread])
    )
    shown = diagnose.report_from_recording(recording, show_locals=True)
    assert any(v.value == value for n in shown.dataflows[0].nodes for v in n.locals or [])
    db = tmp_path / "h.sqlite3"
    assert write.record(recording, shown, "test", db) == 1
    sqlite3.connect(str(db)).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"hunter2" not in stored and b"saver" in stored
