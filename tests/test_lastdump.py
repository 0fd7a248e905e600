"""The last dump: a native dump of each node still alive just before dora's deadlines, and
the report saying what a killed node was doing (capture/lastdump.py, analysis, renderers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_doctor

from dora_doctor.capture import lastdump
from dora_doctor.dora.private import LocalDora
from dora_doctor.model import DUMP_BEFORE_SIGKILL, DUMP_BEFORE_SIGTERM
from dora_doctor.recording.reader import read_recording

FIX = Path(__file__).parent / "fixtures"


def test_deadlines_follow_the_release_line_s_signal_ladder() -> None:
    assert lastdump.deadlines(2.0, "1.1.0") == [
        (2.0, DUMP_BEFORE_SIGTERM),
        (3.0, DUMP_BEFORE_SIGKILL),
    ]
    assert lastdump.deadlines(2.0, "0.3.13") == [(2.0, DUMP_BEFORE_SIGKILL)]


def test_a_hostile_dump_is_bounded_and_never_crashes() -> None:
    threads = [
        {
            "thread_id": 10**40,
            "thread_name": "\x1b[31mevil" * 100,
            "frames": [{"name": "f", "filename": "/x.py", "line": "NaN"}] * 1000,
        }
    ] * 1000
    parsed = lastdump.parse_dump(json.dumps(threads))
    assert len(parsed) == lastdump.MAX_THREADS
    assert len(parsed[0].frames) == lastdump.MAX_FRAMES
    assert parsed[0].thread_id == 0 and parsed[0].frames[0].line == 0
    assert len(parsed[0].name) <= 200
    assert lastdump.parse_dump("not json") == [] and lastdump.parse_dump('{"a": 1}') == []


@pytest.mark.dora
def test_a_killed_node_s_last_dump_says_what_it_was_doing(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """flusher ignores STOP and its SIGTERM handler loops in flush_journal for 6 s: dora
    SIGKILLs it at 1.5 × grace, and the dump taken just before shows it in the handler."""
    local_dora.start_dataflow(samples / "sigterm_slow.yml", "flush")
    local_dora.wait_running("flush", nodes=1)
    record = tmp_path / "flush.ddrec"
    args = ["--stop", "--grace-duration", "1s", "--stop-after", "2s", "--no-history"]
    result = run_doctor(
        "inspect", "flush", *args, "--record", str(record), "--json", env=local_dora.env
    )
    assert result.returncode == 0, result.stderr
    (flusher,) = json.loads(result.stdout)["dataflows"][0]["nodes"]
    assert flusher["outcome"] == "killed", flusher
    dump = flusher["last_dump"]
    assert dump is not None and dump["before"] == DUMP_BEFORE_SIGKILL, dump
    assert dump["error"] is None
    # taken before the SIGKILL at 1.5 s, after the SIGTERM at 1 s
    assert 1.0 <= dump["seconds_after_stop"] <= 1.5, dump
    main = dump["threads"][0]
    assert main["owns_gil"], dump
    assert any("flush_journal" in frame for frame in main["frames"]), main
    assert any("on_sigterm" in frame for frame in main["frames"]), main
    # the recording holds it as its own record, and `report` says it
    recording = read_recording(record)
    assert [d.node for d in recording.last_dumps] == ["flusher"]
    shown = run_doctor("--no-color", "report", str(record))
    assert shown.returncode == 0, shown.stderr
    assert "When dora ended it" in shown.stdout and "flush_journal" in shown.stdout


def test_only_deadline_dumps_pause_the_node_rolling_ones_never_do() -> None:
    """A native dump pauses the node; rolling dumps come every 0.5 s for as long as a node
    lives past a stop of unknown grace, and must not slow the shutdown they record."""
    from dora_doctor.capture.lastdump import dump_argv

    assert "--native" in dump_argv("py-spy", 42) and "--nonblocking" not in dump_argv("py-spy", 42)
    rolling = dump_argv("py-spy", 42, native=False)
    assert "--nonblocking" in rolling and "--native" not in rolling
