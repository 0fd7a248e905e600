"""The hostile recordings of tests/fixtures/hostile/recordings/ (see its README.md) through
`report` in every format and through `merge`, in-process: exit 0 with the bad records
skipped and counted, or exit 2 with one line; never a traceback or an internal error."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from typer.testing import CliRunner

from dora_doctor.cli import app
from dora_doctor.errors import DoctorError
from dora_doctor.recording.reader import read_recording

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "fixtures" / "hostile" / "recordings"
SOUND = ROOT / "tests" / "fixtures" / "recordings" / "gil.ddrec"
PARTNER = HOSTILE / "partner.ddrec"
FORMATS = ["terminal", "json", "markdown", "html", "perfetto"]
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "FORCE_COLOR": None, "DORA_DOCTOR_DEBUG": None}

# file -> (report's exit code, records skipped when it is 0, merge's exit code): the README's
# table
EXPECTED: Dict[str, Tuple[int, int, int]] = {
    "nan-time": (0, 2, 2),
    "inf-time": (0, 3, 2),
    "huge-time": (0, 2, 2),
    "huge-int": (0, 6, 2),
    "string-time": (0, 2, 2),
    "schema-superscript": (2, 0, 2),
    "version-dict": (0, 3, 2),
    "negative-frame-index": (0, 1, 2),
    "frame-index-out-of-range": (0, 1, 2),
    "negative-counts": (0, 2, 2),
    "no-valid-dataflow": (2, 0, 2),
    "truncated-last-line": (0, 0, 0),
    "deep-nesting": (0, 1, 2),
    "not-a-recording": (2, 0, 2),
    "empty": (2, 0, 2),
    "merge-dataflows-not-a-list": (2, 0, 2),
    "merge-dataflow-not-an-object": (0, 1, 2),
    "merge-node-not-an-object": (0, 1, 2),
    "merge-logs-not-an-object": (0, 1, 2),
    "merge-stacks-without-start": (0, 1, 2),
    "merge-start-not-a-number": (0, 1, 2),
    "merge-unhashable-frame": (0, 12, 2),
    "partner": (0, 0, 0),
}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def run(*args: str) -> Tuple[int, str]:
    """Exit code and output as ``cli.main`` would give them: a DoctorError is its one line."""
    result = CliRunner().invoke(app, list(args), env=ENV)
    error: Optional[BaseException] = result.exception
    if isinstance(error, DoctorError):
        return error.exit_code, f"dora-doctor: error: {error}\n"
    assert error is None or isinstance(error, SystemExit), (
        f"internal error: {type(error).__name__}: {error}"
    )
    return result.exit_code, result.output


def assert_one_line_error(code: int, output: str) -> None:
    assert code == 2, output
    assert output.startswith("dora-doctor: error: ") and output.count("\n") == 1, output
    assert "Traceback" not in output and "internal error" not in output
    assert not CONTROL.search(output.rstrip("\n")), output


def test_the_corpus_is_the_documented_one() -> None:
    on_disk = sorted(p.stem for p in HOSTILE.glob("*.ddrec"))
    assert on_disk == sorted(EXPECTED)
    readme = (HOSTILE / "README.md").read_text(encoding="utf-8")
    for name in EXPECTED:
        assert f"`{name}.ddrec`" in readme, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("fmt", FORMATS)
def test_report_in_every_format(name: str, fmt: str) -> None:
    path = HOSTILE / f"{name}.ddrec"
    want_code, want_skipped, _ = EXPECTED[name]
    code, output = run("report", str(path), "--format", fmt)
    assert "Traceback" not in output and "internal error" not in output
    if want_code == 2:
        assert_one_line_error(code, output)
        assert "damaged" in output or "not a dora-doctor recording" in output
        return
    assert code == 0, output
    if fmt == "terminal":
        summary = [line for line in output.splitlines() if "malformed record" in line]
        if want_skipped:
            plural = "s" if want_skipped > 1 else ""
            assert summary == [f"{want_skipped} malformed record{plural} skipped"], summary
        else:
            assert summary == []
    if fmt == "json":
        report = json.loads(output, parse_constant=_refuse)
        skipped = report.get("skipped_records")
        assert (skipped or {}).get("count", 0) == want_skipped, skipped
        _check_numbers(report)
        _holders_were_sampled(report, path)
    if fmt == "perfetto":
        json.loads(output, parse_constant=_refuse)


def _refuse(constant: str) -> Any:
    raise AssertionError(f"{constant} in JSON output")


def _numbers(value: Any, key: str = "") -> Iterator[Tuple[str, float]]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _numbers(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item, key)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield key, value


def _check_numbers(report: Dict[str, Any]) -> None:
    """Counts, rates and shares a report states are never negative (no '-25 samples')."""
    for key, value in _numbers(report):
        if key in ("samples", "sample_rate_hz", "held_share", "share", "count"):
            assert value >= 0, (key, value)


def _holders_were_sampled(report: Dict[str, Any], path: Path) -> None:
    """A GIL holder the report names is a frame some gil record of the file really holds
    (a negative index once wrapped around to a frame never sampled)."""
    recording = read_recording(path)
    held = {(f.function, f.file, f.line) for g in recording.gil for s in g.stacks for f in s.stack}
    for dataflow in report["dataflows"]:
        for node in dataflow["nodes"]:
            for holder in node["gil"]["holders"]:
                assert (holder["function"], holder["file"], holder["line"]) in held, holder


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_merge_checks_every_input_before_writing(name: str, tmp_path: Path) -> None:
    out = tmp_path / "merged.ddrec"
    _, _, want = EXPECTED[name]
    code, output = run("merge", str(PARTNER), str(HOSTILE / f"{name}.ddrec"), "-o", str(out))
    assert "Traceback" not in output and "internal error" not in output
    if want == 2:
        assert_one_line_error(code, output)
        assert not out.exists()
        assert list(tmp_path.iterdir()) == []  # no temporary file left behind either
        return
    assert code == 0, output
    merged = read_recording(out)
    assert merged.skipped_records.count == 0 and not merged.truncated
    assert [p.name for p in tmp_path.iterdir()] == ["merged.ddrec"]
    code, output = run("report", str(out), "--format", "json")
    assert code == 0, output


def test_merge_refuses_a_damaged_input_in_any_position(tmp_path: Path) -> None:
    out = tmp_path / "merged.ddrec"
    damaged = HOSTILE / "merge-unhashable-frame.ddrec"
    code, output = run("merge", str(damaged), str(PARTNER), "-o", str(out))
    assert_one_line_error(code, output)
    assert "merge-unhashable-frame.ddrec is damaged" in output and not out.exists()


def test_the_skip_reasons_name_fields_never_values() -> None:
    """Reasons reach the terminal and the JSON: they name what broke, not what it held."""
    reasons: List[str] = []
    for name, (code, _, _) in EXPECTED.items():
        if code == 0:
            reasons += read_recording(HOSTILE / f"{name}.ddrec").skipped_records.reasons
    assert reasons
    for reason in reasons:
        assert re.fullmatch(r"line \d+: [A-Za-z_ .:,()]+", reason), reason


def test_a_sound_recording_reports_no_skipped_records() -> None:
    code, output = run("report", str(SOUND), "--format", "json")
    assert code == 0 and "skipped_records" not in json.loads(output)
