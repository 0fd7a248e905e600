"""Every JSON dora-doctor writes validates against the schema files in docs/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import jsonschema
import pytest

from dora_doctor.analysis.postmortem import postmortem
from dora_doctor.analysis.result import analyse
from dora_doctor.recording.jsonl import read_recording
from dora_doctor.report import RenderOptions, registry

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
RECORDINGS = sorted((FIX / "recordings").glob("*.ddrec"))


def schema(name: str) -> Dict[str, Any]:
    loaded: Dict[str, Any] = json.loads((ROOT / "docs" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_reports_of_real_recordings_validate(path: Path) -> None:
    report = json.loads(registry.JSON.render(analyse(read_recording(path)), RenderOptions()))
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
    data = json.loads(
        registry.POSTMORTEM["json"].render(postmortem([str(FIX / folder)]), RenderOptions())
    )
    jsonschema.validate(data, schema("report"))
    assert data["postmortem"]["summary"]["stops"] > 0
