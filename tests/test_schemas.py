"""Every JSON dora-doctor writes validates against the schema files in docs/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import jsonschema
import pytest

from dora_doctor.analysis.diagnose import report_from_recording
from dora_doctor.analysis.postmortem import postmortem
from dora_doctor.recording.reader import read_recording
from dora_doctor.report import json as json_report
from dora_doctor.report import postmortem as postmortem_report

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
RECORDINGS = sorted((FIX / "recordings").glob("*.ddrec"))


def schema(name: str) -> Dict[str, Any]:
    loaded: Dict[str, Any] = json.loads((ROOT / "docs" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_reports_of_real_recordings_validate(path: Path) -> None:
    report = json.loads(json_report.render(report_from_recording(read_recording(path))))
    jsonschema.validate(report, schema("report"))


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_every_recording_line_validates(path: Path) -> None:
    line_schema = schema("recording")
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "header"
    for line in lines:
        jsonschema.validate(json.loads(line), line_schema)


@pytest.mark.parametrize("folder", ["dora-1.1.0", "dora-0.3.13"])
def test_postmortem_json_validates(folder: str) -> None:
    data = json.loads(postmortem_report.render_json(postmortem([str(FIX / folder)])))
    jsonschema.validate(data, schema("report"))
    assert data["postmortem"]["summary"]["stops"] > 0
