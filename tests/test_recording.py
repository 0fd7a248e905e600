"""The recording file: written line by line, read back whole, tolerant of a cut-off end."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

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
from dora_doctor.recording import codec
from dora_doctor.recording.codec import Invalid, decode_node, encode_node, make_header
from dora_doctor.recording.model import KEPT_REASONS, SCHEMA
from dora_doctor.recording.reader import (
    bounded_lines,
    ensure_usable,
    parse_recording,
    read_recording,
)
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


def _lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _rewrite(path: Path, lines: List[Dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_a_bad_record_is_skipped_whole_and_counted_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "r.ddrec"
    _write(path)
    lines = _lines(path)
    gil = next(line for line in lines if line["type"] == "gil")
    gil["stacks"][0]["count"] = -25
    _rewrite(path, lines)
    rec = read_recording(path)
    assert rec.gil == [] and len(rec.stacks) == 1 and len(rec.events) == 1
    assert rec.skipped_records.count == 1
    assert rec.skipped_records.reasons == [f"line {lines.index(gil) + 1}: count is out of range"]


def test_a_negative_frame_index_never_wraps_around(tmp_path: Path) -> None:
    path = tmp_path / "r.ddrec"
    _write(path)
    lines = _lines(path)
    next(line for line in lines if line["type"] == "gil")["stacks"][0]["stack"] = [-1]
    _rewrite(path, lines)
    rec = read_recording(path)
    assert rec.gil == [] and rec.skipped_records.reasons[0].endswith("frame index is out of range")


def test_only_at_most_a_few_reasons_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.ddrec"
    _write(path)
    with path.open("a") as handle:
        for _ in range(50):
            handle.write('{"type": "process", "time": "soon"}\n')
        handle.write('{"type": "process", "dataflow": "u-1"}\n')
    rec = read_recording(path)
    assert rec.skipped_records.count == 51 and len(rec.skipped_records.reasons) == KEPT_REASONS


@pytest.mark.parametrize(
    "schema",
    [
        "dora-doctor.recording/\u00b2",
        "dora-doctor.recording/\u0661",  # an Arabic-Indic digit: a digit to str.isdigit()
        "dora-doctor.recording/0",
        "dora-doctor.recording/1 ",
        "dora-doctor.recording/" + "1" * 400,
    ],
)
def test_a_schema_string_is_exactly_name_slash_integer(schema: str, tmp_path: Path) -> None:
    path = tmp_path / "r.ddrec"
    path.write_text(json.dumps({"type": "header", "schema": schema, "dataflows": []}) + "\n")
    with pytest.raises(DoctorError, match="is damaged: its schema|newer than") as err:
        read_recording(path)
    assert "\n" not in str(err.value)


def test_nodes_decode_tolerantly_and_encode_every_field(tmp_path: Path) -> None:
    """A newer dora-doctor may add optional fields to NodeProcess (caught signals, say): an
    older reader ignores the keys it does not know; the writer writes every field."""
    node = NodeProcess("hog", "u-1", 10, 10, True, "3.11", machine="A", remote=True)
    encoded = encode_node(node)
    assert list(encoded) == [f.name for f in fields(NodeProcess) if f.name != "dataflow"]
    assert decode_node({**encoded, "caught_signals": [15], "future": {"x": 1}}, "u-1") == node
    with pytest.raises(Invalid, match="pid is out of range"):
        decode_node({**encoded, "pid": -3}, "u-1")
    with pytest.raises(Invalid, match="python is not true or false"):
        decode_node({**encoded, "python": "yes"}, "u-1")


def test_an_endless_line_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    path = tmp_path / "r.ddrec"
    _write(path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "x" * 5000 + "\n" + "".join(lines[1:]))
    with path.open() as handle:
        pieces = list(bounded_lines(handle, limit=1000))
    assert max(len(piece) for piece in pieces) <= 1000
    rec = parse_recording(iter(pieces), path)
    assert rec.skipped_records.count == 1 and len(rec.stacks) == 1 and len(rec.events) == 1


def test_report_of_a_header_with_no_valid_dataflow_says_the_input_is_damaged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.ddrec"
    _write(path)
    lines = _lines(path)
    lines[0]["dataflows"] = [{"uuid": ["u-1"]}]
    _rewrite(path, lines)
    rec = read_recording(path)
    assert rec.dataflows == [] and rec.skipped_records.count == 1
    with pytest.raises(DoctorError, match="is damaged: its header names no valid dataflow"):
        ensure_usable(rec)


@pytest.mark.parametrize("checked", [True, False])
def test_huge_integers_are_refused_by_their_field_on_every_python(
    checked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python < 3.11 converts digits of any length (slowly), so there the parser keeps a
    stand-in that the field check refuses; later Pythons parse up to 4300 digits and the
    range check refuses them. Both paths run here, whichever Python runs the tests."""
    monkeypatch.setattr(codec, "_CHECK_INTS", checked)
    hostile = Path(__file__).parent / "fixtures" / "hostile" / "recordings" / "huge-int.ddrec"
    rec = read_recording(hostile)
    assert rec.skipped_records.count == 6
    assert all(("pid" in r or "held" in r) for r in rec.skipped_records.reasons)
    assert all(s.pid < 2**64 for s in [*rec.stacks, *rec.gil])


@dataclass
class _NewerNode:
    """NodeProcess as a later branch may grow it: fields the table can and cannot check."""

    id: str
    caught_signals: Optional[FrozenSet[int]] = None
    restarts: Tuple[int, ...] = ()
    labels: Dict[str, int] = field(default_factory=dict)
    names: Dict[str, str] = field(default_factory=dict)


def test_fields_added_later_are_checked_when_their_type_is_known() -> None:
    node = _NewerNode("hog", frozenset({15, 2}), (1, 2), {"a": 1}, {"op": "/x/op.py"})
    encoded = codec._encode_fields(node)
    assert encoded == {
        "id": "hog",
        "caught_signals": [2, 15],
        "restarts": [1, 2],
        "labels": {"a": 1},
        "names": {"op": "/x/op.py"},
    }
    again = codec._decode_fields(_NewerNode, encoded, "node", {})
    # a Dict[str, int] field is not in the table: it keeps its default rather than an
    # unchecked value; a name -> name map (a runtime's operators) is checked and kept
    assert again == _NewerNode("hog", frozenset({15, 2}), (1, 2), {}, {"op": "/x/op.py"})
    with pytest.raises(Invalid, match="names is not a string"):
        codec._decode_fields(_NewerNode, {**encoded, "names": {"op": ["/x"]}}, "node", {})
    with pytest.raises(Invalid, match="names is not an object"):
        codec._decode_fields(_NewerNode, {**encoded, "names": ["op"]}, "node", {})
    many = {str(i): "f.py" for i in range(codec.MAX_MAP_ITEMS + 1)}
    with pytest.raises(Invalid, match="names has too many entries"):
        codec._decode_fields(_NewerNode, {**encoded, "names": many}, "node", {})
    with pytest.raises(Invalid, match="caught_signals is not an integer"):
        codec._decode_fields(_NewerNode, {**encoded, "caught_signals": ["TERM"]}, "node", {})
