"""``inspect --locals``: local variables are recorded, and every shared report redacts them.

End to end with a real node whose frame holds a secret in a local variable, real py-spy and
the real CLI; plus the py-spy output parser and the redaction on their own.
"""

from __future__ import annotations

import html
import json
import uuid
from pathlib import Path
from typing import Any, Dict, List

import jsonschema
import pytest
from helpers import assert_recording_lines_valid, run_doctor

from dora_doctor import model
from dora_doctor.analysis import redaction
from dora_doctor.analysis.findings import LocalValue
from dora_doctor.capture import locals_dump
from dora_doctor.dora.private import LocalDora
from dora_doctor.recording.reader import read_recording

ROOT = Path(__file__).resolve().parent.parent

# A node that keeps a secret in a local variable of the frame that waits for events, and
# after STOP lingers a moment in a function that holds it too (so the stop-time dump finds it).
NODE = """
import time
from dora import Node


def linger(api_token):
    time.sleep(1.5)


def serve(node):
    api_token = "{secret}"
    for event in node:
        if event["type"] == "STOP":
            break
    linger(api_token)


if __name__ == "__main__":
    serve(Node())
"""

DATAFLOW = """
nodes:
  - id: keeper
    path: keeper.py
    inputs:
      tick: dora/timer/millis/500
"""


def schema(name: str) -> Dict[str, Any]:
    loaded: Dict[str, Any] = json.loads((ROOT / "docs" / f"{name}.schema.json").read_text())
    return loaded


def keeper_dataflow(folder: Path, secret: str) -> Path:
    folder.mkdir()
    (folder / "keeper.py").write_text(NODE.format(secret=secret))
    yml = folder / "keeper.yml"
    yml.write_text(DATAFLOW)
    return yml


def record_locals(local_dora: LocalDora, tmp_path: Path, secret: str, *extra: str) -> Path:
    local_dora.start_dataflow(keeper_dataflow(tmp_path / "flow", secret), "keeper")
    local_dora.wait_running("keeper", nodes=1)
    record = tmp_path / "keeper.ddrec"
    result = run_doctor(
        "inspect", "keeper", "--locals", "--record", str(record), "--json", *extra,
        env=local_dora.env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert secret not in result.stdout + result.stderr  # inspect's own report: redacted
    (node,) = json.loads(result.stdout)["dataflows"][0]["nodes"]
    assert any(v["name"] == "api_token" for v in node["locals"]), node["locals"]
    return record


def assert_redacted_everywhere(record: Path, secret: str, tmp_path: Path) -> None:
    raw = record.read_text()
    assert secret in raw  # the recording is the one place the value is kept
    assert_recording_lines_valid(raw)
    redacted = f"<redacted: {len(secret) + 2} chars>"  # py-spy's repr quotes the string
    outputs: Dict[str, str] = {}
    for fmt in ("markdown", "html", "perfetto", "json", "terminal"):
        result = run_doctor("report", str(record), "--format", fmt)
        assert result.returncode == 0, result.stderr
        outputs[fmt] = result.stdout
    written = tmp_path / "shared.html"
    assert run_doctor("report", str(record), "-o", str(written)).returncode == 0
    outputs["html file"] = written.read_text()
    for fmt, text in outputs.items():
        assert secret not in text, f"{fmt} leaks the secret"
        assert "api_token" in text, f"{fmt} lost the variable's name"
        shown = html.escape(redacted) if fmt.startswith("html") else redacted
        assert shown in text, f"{fmt} does not say what was redacted"
    report = json.loads(outputs["json"])
    jsonschema.validate(report, schema("report"))
    shown = run_doctor("report", str(record), "--json", "--show-locals")
    assert shown.returncode == 0, shown.stderr
    values = [v["value"] for v in json.loads(shown.stdout)["dataflows"][0]["nodes"][0]["locals"]]
    assert f'"{secret}"' in values


@pytest.mark.dora
def test_locals_at_the_end_of_the_watch_are_redacted_in_every_report(
    local_dora: LocalDora, tmp_path: Path
) -> None:
    secret = f"hunter2-{uuid.uuid4().hex}"
    record = record_locals(local_dora, tmp_path, secret, "--duration", "2")
    (snapshot,) = read_recording(record).locals
    assert snapshot.moment == model.LOCALS_AT_END and snapshot.error is None
    frames = [f for t in snapshot.threads for f in t.frames if f.function == "serve"]
    assert frames and any(v.name == "api_token" for v in frames[0].variables)
    assert_redacted_everywhere(record, secret, tmp_path)


@pytest.mark.dora
def test_locals_at_the_stop_are_taken_when_the_stop_is_seen(
    local_dora: LocalDora, tmp_path: Path
) -> None:
    secret = f"correct-horse-{uuid.uuid4().hex}"
    record = record_locals(
        local_dora, tmp_path, secret, "--stop", "--stop-after", "1s", "--grace-duration", "5s"
    )
    recording = read_recording(record)
    moments = [s.moment for s in recording.locals]
    assert moments == [model.LOCALS_AT_STOP], moments  # the node had exited by the end
    # dora-doctor's own stop request comes first, the coordinator's line after it
    asked = min(e.time for e in recording.logs if e.kind == "stop-request" and e.time)
    assert 0 <= recording.locals[0].time - asked < 1.0
    assert_redacted_everywhere(record, secret, tmp_path)


# py-spy 0.4.3 `dump --locals --json` of a thread in `work(token, n)` (trimmed to two frames)
DUMP = """[{"pid": 1, "thread_id": 140395881019072, "thread_name": "worker",
  "os_thread_id": 24169, "active": false, "owns_gil": false,
  "frames": [
    {"name": "work", "filename": "<string>", "module": null, "short_filename": "<string>",
     "line": 7, "locals": [
       {"name": "token", "addr": 1, "arg": true, "repr": "\\"tok-abc\\""},
       {"name": "secret_password", "addr": 2, "arg": false, "repr": "\\"hunter2\\""}],
     "is_entry": true, "is_shim_entry": false},
    {"name": "Thread.run", "filename": "/usr/lib/python3.11/threading.py", "module": null,
     "short_filename": "threading.py", "line": 982, "locals": [],
     "is_entry": false, "is_shim_entry": false}],
  "process_info": null}]"""


def test_parse_dump_keeps_frames_with_variables_innermost_first() -> None:
    (thread,) = locals_dump.parse_dump(DUMP)
    assert (thread.thread_id, thread.name) == (24169, "worker")
    (frame,) = thread.frames  # Thread.run has no variables
    assert (frame.function, frame.line) == ("work", 7)
    assert [(v.name, v.arg, v.value) for v in frame.variables] == [
        ("token", True, '"tok-abc"'),
        ("secret_password", False, '"hunter2"'),
    ]
    assert locals_dump.parse_dump("Error: not json") == []


def test_redaction_keeps_names_and_lengths_only() -> None:
    snapshot = model.LocalsSnapshot(
        "d", "n", 1, 0.0, model.LOCALS_AT_STOP, locals_dump.parse_dump(DUMP)
    )
    (hidden,) = redaction.redact([snapshot])
    variables = hidden.threads[0].frames[0].variables
    assert [(v.name, v.value) for v in variables] == [
        ("token", "<redacted: 9 chars>"),
        ("secret_password", "<redacted: 9 chars>"),
    ]
    assert snapshot.threads[0].frames[0].variables[1].value == '"hunter2"'  # not mutated
    grouped: Dict[str, List[LocalValue]] = redaction.by_frame(
        [LocalValue("stop", "worker", "work", "<string>", 7, "token", "x")]
    )
    assert list(grouped) == ["at the stop: worker in work (<string>:7)"]
