"""The recording file: written line by line, read back whole, tolerant of a cut-off end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dora_doctor.errors import DoctorError
from dora_doctor.model import (
    Dataflow,
    Frame,
    GilSegment,
    GilStack,
    NodeProcess,
    ProcessEvent,
    Span,
    StackSegment,
    ThreadTrack,
)
from dora_doctor.recording.codec import make_header
from dora_doctor.recording.model import SCHEMA
from dora_doctor.recording.reader import read_recording
from dora_doctor.recording.writer import RecordingWriter

HOLD = (Frame("Thread.run", "threading.py", 982), Frame("crunch", "/x/hold.py", 7))
MAIN = (Frame("<module>", "/x/hold.py", 20), Frame("main", "/x/hold.py", 14))


def _write(path: Path) -> None:
    dataflow = Dataflow(
        "u-1", "robot", "Running", [NodeProcess("hog", "u-1", 10, 10, True, "3.11")]
    )
    with RecordingWriter(path, make_header([dataflow], "1.1.0", {"rate": 200})) as writer:
        writer.write(
            StackSegment(
                "u-1",
                "hog",
                10,
                100.0,
                101.0,
                199,
                0,
                [
                    ThreadTrack(2, "cruncher", [Span(100.0, 101.0, HOLD)]),
                    ThreadTrack(
                        1, "MainThread", [Span(100.0, 100.5, MAIN), Span(100.5, 101.0, MAIN[:1])]
                    ),
                ],
            )
        )
        writer.write(
            GilSegment("u-1", "hog", 10, 100.0, 101.0, 190, 0, [GilStack(2, "cruncher", HOLD, 190)])
        )
        writer.write(ProcessEvent("u-1", "hog", 10, 102.0, "exited"))


def test_round_trip_keeps_every_record(tmp_path: Path) -> None:
    path = tmp_path / "r.ddrec"
    _write(path)
    first = json.loads(path.read_text().splitlines()[0])
    assert first["type"] == "header" and first["schema"] == SCHEMA == "dora-doctor.recording/1"
    rec = read_recording(path)
    assert rec.dora_version == "1.1.0" and rec.header["sampler"] == {"rate": 200}
    assert rec.dataflows[0].nodes[0].python_version == "3.11"
    assert rec.stacks[0].threads[0].spans[0].stack == HOLD
    assert rec.stacks[0].threads[1].spans[1].stack == MAIN[:1]
    assert rec.gil[0].stacks[0].stack == HOLD and rec.gil[0].held == 190
    assert rec.events[0].kind == "exited"
    assert not rec.truncated and rec.malformed_lines == 0


def test_frames_are_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "r.ddrec"
    _write(path)
    frame_records = [
        json.loads(ln) for ln in path.read_text().splitlines() if '"frames"' in ln[:20]
    ]
    stored = [f for rec in frame_records for f in rec["frames"]]
    assert len(stored) == len(set(HOLD) | set(MAIN))


def test_a_cut_off_last_line_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "r.ddrec"
    _write(path)
    text = path.read_text()
    path.write_text(text[: len(text) - 25])  # killed while writing the last line
    rec = read_recording(path)
    assert rec.truncated and rec.malformed_lines == 0
    assert len(rec.stacks) == 1 and len(rec.gil) == 1 and rec.events == []


def test_a_future_schema_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "r.ddrec"
    path.write_text(json.dumps({"type": "header", "schema": "dora-doctor.recording/7"}) + "\n")
    with pytest.raises(DoctorError, match="newer than this dora-doctor reads.*upgrade"):
        read_recording(path)


def test_other_files_are_not_recordings(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(DoctorError, match="is not a dora-doctor recording"):
        read_recording(path)
    with pytest.raises(DoctorError, match="no such recording"):
        read_recording(tmp_path / "missing.ddrec")
    with pytest.raises(DoctorError, match="is a directory"):
        read_recording(tmp_path)


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "precious.ddrec"
    path.write_text("mine\n")
    with pytest.raises(DoctorError, match="already exists"):
        RecordingWriter(path, make_header([], None, {}))
    assert path.read_text() == "mine\n"
