"""Every JSON dora-doctor writes validates against the schema files in docs/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import jsonschema
import pytest
from helpers import assert_recording_lines_valid, run_doctor
from referencing import Registry, Resource

from dora_doctor.analysis.postmortem import postmortem
from dora_doctor.analysis.result import analyse
from dora_doctor.dora.private import LocalDora
from dora_doctor.recording.reader import read_recording
from dora_doctor.report import RenderOptions, registry

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
RECORDINGS = sorted((FIX / "recordings").glob("*.ddrec"))


def schema(name: str) -> Dict[str, Any]:
    loaded: Dict[str, Any] = json.loads((ROOT / "docs" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


SCHEMAS = sorted(p.name[: -len(".schema.json")] for p in (ROOT / "docs").glob("*.schema.json"))
# The schemas refer to each other by $id (a run of tune-grace holds a whole report).
REGISTRY: Registry = Registry().with_resources(  # type: ignore[call-arg]
    (schema(name)["$id"], Resource.from_contents(schema(name))) for name in SCHEMAS
)


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(name), registry=REGISTRY)


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_is_valid_and_resolves(name: str) -> None:
    """Every $ref resolves: a schema that cannot be loaded validates nothing."""
    assert name in {"report", "recording", "tune-grace", "check"}, name
    doc = schema(name)
    assert doc["$id"].startswith("https://dora-doctor.invalid/schemas/")

    def refs(value: Any) -> Any:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "$ref":
                    yield item
                else:
                    yield from refs(item)
        elif isinstance(value, list):
            for item in value:
                yield from refs(item)

    resolver = REGISTRY.resolver(base_uri=doc["$id"])
    for ref in refs(doc):
        assert resolver.lookup(ref).contents is not None, ref


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_reports_of_real_recordings_validate(path: Path) -> None:
    report = json.loads(registry.JSON.render(analyse(read_recording(path)), RenderOptions()))
    jsonschema.validate(report, schema("report"))


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_every_recording_line_validates(path: Path) -> None:
    text = path.read_text()
    assert json.loads(text.splitlines()[0])["type"] == "header"
    assert_recording_lines_valid(text)


@pytest.mark.parametrize("folder", ["dora-1.1.0", "dora-0.3.13"])
def test_postmortem_json_validates(folder: str) -> None:
    data = json.loads(
        registry.POSTMORTEM["json"].render(postmortem([str(FIX / folder)]), RenderOptions())
    )
    jsonschema.validate(data, schema("report"))
    assert data["postmortem"]["summary"]["stops"] > 0


@pytest.mark.dora
def test_tune_grace_and_check_json_of_a_real_rehearsal_validate(
    local_dora: LocalDora, samples: Path
) -> None:
    """Short real runs on a private dora (one run, 1 s warm-up): the JSON a CI job parses."""
    where = ["--coordinator-port", str(local_dora.coordinator_port), "--dora", local_dora.dora]
    yml = str(samples / "well_behaved.yml")
    short = ["--runs", "1", "--warmup", "1s", "--json", *where]
    tuned = run_doctor("tune-grace", yml, *short, env=local_dora.env, timeout=120)
    assert tuned.returncode == 0, tuned.stderr
    data = json.loads(tuned.stdout)
    validator("tune-grace").validate(data)
    assert [run["index"] for run in data["runs"]] == [1]
    assert {n["node"] for n in data["nodes"]} == {"talker", "listener"}
    assert data["suggestion"]["would_help"] is True and data["suggestion"]["grace_s"] >= 1

    checked = run_doctor("check", yml, "--grace", "10s", *short, env=local_dora.env, timeout=120)
    assert checked.returncode == 0, checked.stderr
    data = json.loads(checked.stdout)
    validator("check").validate(data)
    assert data["check"] == {"grace": "10s", "passed": True, "failures": []}

    # the schema tells a failed check from a passed one: each is refused as the other
    data["check"]["passed"] = False
    with pytest.raises(jsonschema.ValidationError):
        validator("check").validate(data)
    del data["check"]
    with pytest.raises(jsonschema.ValidationError):
        validator("check").validate(data)
    validator("tune-grace").validate(data)

    deaf = str(samples / "ignores_stop.yml")  # never reads STOP: dora ends it at the grace
    failed = run_doctor("check", deaf, "--grace", "1s", *short, env=local_dora.env, timeout=120)
    assert failed.returncode == 1, failed.stderr
    data = json.loads(failed.stdout)
    validator("check").validate(data)
    assert data["check"]["passed"] is False
    (line,) = data["check"]["failures"]
    assert line.startswith("run 1: node deaf "), line
