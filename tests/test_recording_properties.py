"""Property tests of the recording reader and merge: real recordings with one value, one
key or one cut changed to anything hypothesis can think of. Whatever the damage, the only
exception is a DoctorError, and what the reader keeps is sound: every frame a stack names
was stored in a frames record, every time is finite and non-negative, every count too."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any, List, Set, Tuple, Union

from helpers import assert_recording_lines_valid
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_doctor.analysis.diagnose import report_from_recording
from dora_doctor.analysis.result import analyse
from dora_doctor.errors import DoctorError
from dora_doctor.model import Frame
from dora_doctor.recording.codec import MAX_TIME
from dora_doctor.recording.merge import merge
from dora_doctor.recording.model import KEPT_REASONS, Recording
from dora_doctor.recording.reader import parse_recording, read_recording
from dora_doctor.report import RenderOptions, registry

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = ROOT / "tests" / "fixtures" / "recordings"
PARTNER = ROOT / "tests" / "fixtures" / "hostile" / "recordings" / "partner.ddrec"
BASES = {name: (RECORDINGS / name).read_text().splitlines() for name in ("gil.ddrec", "mx.ddrec")}

Path_ = Tuple[Union[str, int], ...]

HOSTILE_VALUES = st.one_of(
    st.sampled_from(
        [float("nan"), float("inf"), -float("inf"), 1e308, -1, -25, 10**400, "1795615454.8"]
    ),
    st.sampled_from([{"x": 1}, [], [-1], [10**6], "dora-doctor.recording/\u00b2", True, None]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.text(max_size=12),
    st.lists(st.integers(min_value=-3, max_value=40), max_size=4),
)


def _paths(value: Any, prefix: Path_ = ()) -> List[Path_]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _set(root: Any, path: Path_, new: Any, delete: bool) -> Any:
    if not path:
        return new
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return root


@st.composite
def damaged(draw: st.DrawFn, base: str = "") -> str:
    """The text of a real recording with one value replaced or removed, a line inserted, or
    the text cut anywhere."""
    lines = BASES[base or draw(st.sampled_from(sorted(BASES)))]
    how = draw(st.sampled_from(["value", "value", "value", "line", "cut"]))
    if how == "cut":
        text = "\n".join(lines) + "\n"
        return text[: draw(st.integers(min_value=0, max_value=len(text)))]
    parsed = [json.loads(line) for line in lines]
    index = draw(st.integers(min_value=0, max_value=len(parsed) - 1))
    if how == "line":
        junk = draw(st.one_of(st.text(max_size=40), HOSTILE_VALUES.map(json.dumps)))
        out = [*lines[:index], junk.replace("\n", " "), *lines[index:]]
        return "\n".join(out) + "\n"
    path = draw(st.sampled_from(_paths(parsed[index])))
    parsed[index] = _set(parsed[index], path, draw(HOSTILE_VALUES), draw(st.booleans()))
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in parsed)


def _stored_frames(text: str) -> Set[Frame]:
    """Every frame any frames record of the text stores in the right shape."""
    found: Set[Frame] = set()
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("type") == "frames":
            frames = value.get("frames")  # damaged text may hold any JSON value here (NaN)
            for item in frames if isinstance(frames, list) else []:
                shape = [type(part) for part in item] if isinstance(item, list) else []
                if shape == [str, str, int]:
                    found.add(Frame(*item))
    return found


def _finite_time(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= MAX_TIME


def _check_sound(recording: Recording, text: str) -> None:
    stored = _stored_frames(text)
    for seg in [*recording.stacks, *recording.gil, *recording.cpu]:
        assert _finite_time(seg.start) and _finite_time(seg.end) and seg.start <= seg.end
    for seg in recording.stacks:
        assert seg.ticks >= 0 and seg.errors >= 0
        for thread in seg.threads:
            for span in thread.spans:
                assert _finite_time(span.start) and _finite_time(span.end)
                assert set(span.stack) <= stored
    for gil in recording.gil:
        assert gil.held >= 0 and gil.errors >= 0
        for stack in gil.stacks:
            assert stack.count >= 0 and set(stack.stack) <= stored
    for cpu in recording.cpu:
        assert all(_finite_time(v) for v in cpu.cpu.values())
        assert all(0.0 <= v <= 1.0 for v in cpu.runnable.values())
    for event in [*recording.events, *recording.locals]:
        assert _finite_time(event.time)
    for log in recording.logs:
        assert log.time is None or _finite_time(log.time)
        assert log.seconds is None or _finite_time(log.seconds)
    assert recording.skipped_records.count >= 0
    assert len(recording.skipped_records.reasons) <= KEPT_REASONS
    assert 0 < recording.sample_rate < math.inf


@settings(max_examples=300, deadline=None)
@given(damaged())
def test_the_reader_keeps_only_sound_records(text: str) -> None:
    try:
        recording = parse_recording(iter(text.splitlines(keepends=True)))
    except DoctorError as err:
        assert "\n" not in str(err)
        return
    _check_sound(recording, text)


@settings(max_examples=60, deadline=None)
@given(damaged())
def test_every_renderer_takes_whatever_the_reader_kept(text: str) -> None:
    try:
        recording = parse_recording(iter(text.splitlines(keepends=True)))
    except DoctorError:
        return
    analysis = analyse(recording)
    options = RenderOptions()
    data = json.loads(registry.JSON.render(analysis, options), parse_constant=_refuse)
    for dataflow in data["dataflows"]:
        for node in dataflow["nodes"]:
            assert node["samples"] >= 0
            assert node["sample_rate_hz"] is None or node["sample_rate_hz"] >= 0
    registry.MARKDOWN.render(analysis, options)
    json.loads(registry.PERFETTO.render(analysis, options), parse_constant=_refuse)


def _refuse(constant: str) -> Any:
    raise AssertionError(f"{constant} in JSON output")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged("gil.ddrec"))
def test_merge_writes_a_sound_recording_or_nothing(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        damaged_input = Path(folder) / "in" / "damaged.ddrec"
        damaged_input.parent.mkdir()
        damaged_input.write_text(text)
        out = Path(folder) / "out" / "merged.ddrec"
        out.parent.mkdir()
        try:
            merge([PARTNER, damaged_input], out)
        except DoctorError as err:
            assert "\n" not in str(err)
            assert list(out.parent.iterdir()) == []  # neither the output nor a temporary file
            return
        assert [p.name for p in out.parent.iterdir()] == ["merged.ddrec"]
        assert_recording_lines_valid(out.read_text())
        merged = read_recording(out)
        assert merged.skipped_records.count == 0 and not merged.truncated
        _check_sound(merged, out.read_text())
        report_from_recording(merged)
