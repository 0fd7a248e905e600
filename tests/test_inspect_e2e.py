"""``dora-doctor inspect`` against a real dora coordinator and daemon, real sample nodes
and real py-spy: the proof that discovery, sampling, recording and reporting work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import jsonschema
import psutil
import pytest
from helpers import process_state, pyspy_recorders_of, run_doctor, start_inspect

from dora_doctor.dora.private import LocalDora
from dora_doctor.recording.reader import read_recording

pytestmark = pytest.mark.dora


def doctor(local: LocalDora, *args: str) -> subprocess.CompletedProcess[str]:
    return run_doctor(*args, env=local.env, timeout=120)


def nodes_of(report: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    (dataflow,) = report["dataflows"]
    return {n["id"]: n for n in dataflow["nodes"]}


def test_gil_holder_of_the_c_call_sample_is_named(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    local_dora.start_dataflow(samples / "gil_contention.yml", "gil")
    local_dora.wait_running("gil", nodes=1)
    record = tmp_path / "gil.ddrec"
    result = doctor(local_dora, "inspect", "--duration", "4", "--json", "--record", str(record))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    schema = json.loads(
        (Path(__file__).resolve().parent.parent / "docs" / "report.schema.json").read_text()
    )
    jsonschema.validate(report, schema)
    assert report["schema"] == "dora-doctor.report/1"
    assert report["dora_version"] == "1.1.0"
    assert {"tool_version", "dataflows"} <= set(report)
    (dataflow,) = report["dataflows"]
    assert dataflow["name"] == "gil" and "suggestion" in dataflow
    crunch = nodes_of(report)["crunch"]
    assert crunch["python"] is True
    assert crunch["samples"] >= 100, crunch
    holder = crunch["gil"]["holders"][0]
    assert holder["thread"] == "cruncher"
    assert holder["function"] == "crunch_numbers"
    assert holder["file"].endswith("samples/nodes/c_call_holder.py")
    assert isinstance(holder["line"], int) and holder["line"] > 0
    assert holder["native"] is True
    assert crunch["gil"]["held_share"] > 0.5
    for key in ("outcome", "stop_duration_s", "cause", "evidence", "advice"):
        assert key in crunch
    recording = read_recording(record)
    assert recording.stacks and recording.gil and not recording.truncated
    assert recording.header["dataflows"][0]["name"] == "gil"


def test_non_python_node_skipped_and_exiting_node_handled(
    local_dora: LocalDora, samples: Path
) -> None:
    local_dora.start_dataflow(samples / "mixed.yml", "mixed")
    pids = local_dora.wait_running("mixed", nodes=3)
    result = doctor(local_dora, "inspect", "mixed", "--duration", "6", "--json")
    assert result.returncode == 0, result.stderr
    nodes = nodes_of(json.loads(result.stdout))
    non_python = [n for n in nodes.values() if not n["python"]]
    assert len(non_python) == 1
    assert non_python[0]["samples"] == 0 and non_python[0]["skipped"] == "not Python"
    early = nodes["early"]
    assert early["python"] is True and early["samples"] > 0
    assert not psutil.pid_exists(pids["early"]) or process_state(pids["early"]) == "Z"
    assert nodes["steady"]["samples"] > early["samples"]


def test_ctrl_c_keeps_a_valid_recording_and_leaves_no_node_paused(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    local_dora.start_dataflow(samples / "well_behaved.yml", "calm")
    pids = local_dora.wait_running("calm", nodes=2)
    record = tmp_path / "calm.ddrec"
    proc = start_inspect(local_dora.env, "calm", record)
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "interrupted (Ctrl-C)" in stderr
    recording = read_recording(record)
    assert recording.stacks and not recording.truncated
    for pid in pids.values():
        assert process_state(pid) in ("S", "R", "D"), (
            f"node {pid} left in state {process_state(pid)}"
        )
    assert pyspy_recorders_of(list(pids.values())) == []
    assert "talker" in stdout


def test_unknown_dataflow_lists_the_running_ones(local_dora: LocalDora, samples: Path) -> None:
    local_dora.start_dataflow(samples / "well_behaved.yml", "present")
    local_dora.wait_running("present", nodes=2)
    result = doctor(local_dora, "inspect", "absent", "--duration", "1")
    assert result.returncode == 2
    assert "no dataflow named 'absent' is running" in result.stderr
    assert "present" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_ptrace_rights_the_error_says_how_to_grant_them(
    local_dora: LocalDora, samples: Path
) -> None:
    """dora-doctor run as an unprivileged user against a node that root started.

    The venv's interpreter lives under /root, which `nobody` cannot enter, so the system
    interpreter of the same version runs dora-doctor's code (importable via PYTHONPATH).
    """
    import pwd
    import sysconfig

    system_python = Path("/usr/bin/python3")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user `nobody` on this machine")
    probe = subprocess.run(
        [str(system_python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if os.geteuid() != 0 or probe.stdout.strip() != "%d.%d" % sys.version_info[:2]:
        pytest.skip("needs root and a system python of the same version as the venv")
    repo = Path(__file__).resolve().parent.parent
    site = sysconfig.get_paths()["purelib"]
    if not all(others_can_enter(Path(p)) for p in (repo / "dora_doctor", site)):
        pytest.skip(f"{repo} or {site} is not readable by other users")
    local_dora.start_dataflow(samples / "well_behaved.yml", "mine")
    pids = local_dora.wait_running("mine", nodes=2)
    code = (
        "import sys\n"
        "from dora_doctor.errors import DoctorError\n"
        "from dora_doctor.model import NodeProcess\n"
        "from dora_doctor.capture.sampler import preflight\n"
        f"pid = {pids['talker']}\n"
        "node = NodeProcess(id='talker', dataflow='d', pid=pid, sample_pid=pid, python=True)\n"
        "try:\n"
        f"    preflight([node], {str(Path(sys.executable).parent / 'py-spy')!r})\n"
        "except DoctorError as err:\n"
        "    print(err); sys.exit(err.exit_code)\n"
    )
    result = subprocess.run(
        [str(system_python), "-c", code],
        env={
            "PYTHONPATH": f"{Path(__file__).resolve().parent.parent}:{site}",
            "PATH": "/usr/bin:/bin",
            "HOME": "/tmp",
        },
        capture_output=True,
        text=True,
        user="nobody",
        cwd="/tmp",
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    message = result.stdout.strip()
    assert f"py-spy may not read process {pids['talker']}" in message
    assert "sudo" in message and "CAP_SYS_PTRACE" in message and "ptrace_scope" in message
    assert process_state(pids["talker"]) in ("S", "R")


def others_can_enter(path: Path) -> bool:
    """Every folder from / down to ``path`` lets other users through (o+x)."""
    import stat

    for folder in [path, *path.parents]:
        try:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True
