"""dora-doctor across dora releases and node Pythons, end to end, plus the version rules.

The rest of the suite runs dora 1.1.0 with nodes on the Python running the tests. Here:
dora 0.3.13 (its own venv, on Python 3.10: its nodes run on 3.10) and dora 1.1.0 with nodes on
Python 3.13 (a node venv put first on the daemon's PATH). Venvs are made once and cached (see
``dora_versions``); ``pytest -m "not matrix"`` leaves the end-to-end part out.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from dora_versions import DORA_OLD, NODES_NEW, dora_venv, node_venv, require
from helpers import assert_c_call_holder, run_doctor, start_inspect

from dora_doctor.analysis import grace
from dora_doctor.capture import pyspy
from dora_doctor.dora import client, versions
from dora_doctor.dora.private import LocalDora
from dora_doctor.errors import USAGE, DoctorError

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# --- the matrix, end to end --------------------------------------------------------------


@pytest.fixture(params=["dora-0.3.13-py3.10", "dora-1.1.0-py3.13"])
def matrix_dora(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalDora]:
    """A private dora of one matrix cell, its nodes on that cell's Python."""
    if request.param.startswith("dora-0.3.13"):
        venv = require(dora_venv, *DORA_OLD)
        local = LocalDora.start(tmp_path / "dora", dora=str(venv.dora))
    else:
        venv = require(node_venv, *NODES_NEW)
        local = LocalDora.start(tmp_path / "dora", node_python=venv.python)
    try:
        yield local
    finally:
        local.close()


def expected_python(local: LocalDora) -> str:
    return DORA_OLD[1] if versions.is_legacy(local.version) else NODES_NEW[0]


def _doctor_args(local: LocalDora) -> List[str]:
    """This instance's dora, named as a user would name it (0.3.x reads no DORA_COORDINATOR_*
    variables: the port must be given)."""
    return ["--json", "--dora", local.dora, "--coordinator-port", str(local.coordinator_port)]


def inspect(local: LocalDora, name: str, *extra: str) -> Dict[str, Dict[str, Any]]:
    """``inspect NAME --json`` against ``local``; its nodes by id."""
    result = run_doctor("inspect", name, *_doctor_args(local), *extra, env=local.env)
    assert result.returncode == 0, result.stderr
    assert f"dora {local.version} at 127.0.0.1:{local.coordinator_port}" in result.stderr
    report = json.loads(result.stdout)
    assert report["dora_version"] == local.version
    (dataflow,) = report["dataflows"]
    assert dataflow["name"] == name
    return {node["id"]: node for node in dataflow["nodes"]}


@pytest.mark.dora
@pytest.mark.matrix
def test_gil_holder_named_and_end_per_version(matrix_dora: LocalDora, samples: Path) -> None:
    """0.3.x SIGKILLs at the grace (no SIGTERM step); 1.x SIGTERMs there. Either way the node
    is found as Python of the cell's version and the GIL holder is named."""
    local = matrix_dora
    local.start_dataflow(samples / "gil_contention.yml", "gc")
    local.wait_running("gc", nodes=1)
    nodes = inspect(local, "gc", "--stop", "--grace-duration", "2s", "--stop-after", "2s")
    crunch = nodes["crunch"]
    assert (crunch["python"], crunch["python_version"]) == (True, expected_python(local))
    assert crunch["cause"] == "gil-contention"
    assert_c_call_holder(crunch)
    # never before the grace; how long after it depends on the machine's load, so the rung of
    # dora's ladder is told by the outcome and dora's own line, not by a time bound
    assert crunch["stop_duration_s"] >= 1.9
    if versions.is_legacy(local.version):
        # 0.3.x: SIGKILL at the grace itself (no SIGTERM step), as its daemon log says
        assert crunch["outcome"] == "killed"
        assert any(
            "crunch was killed due to not stopping within the 2s grace period" in e
            for e in crunch["evidence"]
        )
    else:
        assert crunch["outcome"] == "terminated"  # 1.x: SIGTERM at the grace, which ends it


@pytest.mark.dora
@pytest.mark.matrix
def test_well_behaved_clean_when_the_user_stops(
    matrix_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """Stopped by ``dora stop`` from outside once sampling runs: the stop request is read from
    this version's coordinator log (0.3.x: found by its --control-port), both nodes end clean."""
    local = matrix_dora
    local.start_dataflow(samples / "well_behaved.yml", "wb")
    local.wait_running("wb", nodes=2)
    proc = start_inspect(local.env, "wb", tmp_path / "wb.ddrec", *_doctor_args(local))
    try:
        # a generous grace: how the nodes end, not how fast, is the point here (on a loaded
        # 2-core machine a 2 s grace has been outlasted by a well-behaved node)
        stopped = local.stop_dataflow("wb", "15s")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert stopped.returncode == 0, stopped.stderr
    assert proc.returncode == 0, err
    (dataflow,) = json.loads(out)["dataflows"]
    # the command to type, in this version's syntax (0.3.x: a name only through --name)
    name = "--name wb" if versions.is_legacy(local.version) else "wb"
    assert dataflow["suggestion"]["command"].startswith(f"dora stop {name} --grace-duration ")
    nodes = {node["id"]: node for node in dataflow["nodes"]}
    assert sorted(nodes) == ["listener", "talker"]
    for node in nodes.values():
        assert node["python_version"] == expected_python(local)
        assert node["outcome"] == "clean", node
        assert node["samples"] > 0
        assert node["stop_duration_s"] is not None
        assert "(coordinator log)" in node["evidence"][0], node["evidence"]


# --- the version rules, without dora ------------------------------------------------------


def _fake_dora(tmp_path: Path, version_line: str) -> Path:
    """A stand-in answering only ``--version``: no dora-rs-cli older than 0.3.7 is on PyPI,
    so the refusal of one can only be shown with a stand-in."""
    script = tmp_path / "dora"
    script.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_dora_older_than_0_3_7_is_refused_in_one_line(tmp_path: Path) -> None:
    fake = _fake_dora(tmp_path, "dora-cli 0.3.5")
    result = run_doctor("inspect", "--dora", str(fake), "--coordinator-port", "1")
    assert result.returncode == USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "dora 0.3.5 is not supported" in lines[0] and "0.3.7 or later" in lines[0]


@pytest.mark.parametrize("version", ["0.3.7", "0.3.13", "1.1.0", None])
def test_supported_versions_pass(version: Optional[str]) -> None:
    versions.check_supported(version)


def test_version_is_asked_once(tmp_path: Path) -> None:
    fake = _fake_dora(tmp_path, "dora-cli 0.3.13")
    cli = client.DoraCli(str(fake))
    assert cli.version() == "0.3.13"
    fake.unlink()  # a second `dora --version` would now fail
    assert (cli.version(), cli.legacy()) == ("0.3.13", True)


def test_unsupported_refusal_is_a_usage_error() -> None:
    with pytest.raises(DoctorError) as raised:
        versions.check_supported("0.2.5")
    assert raised.value.exit_code == USAGE


def test_legacy_cli_gets_the_coordinator_on_its_command_line() -> None:
    old = client.DoraCli("dora", "127.0.0.1", 43863, base_env={}, known_version="0.3.13")
    new = client.DoraCli("dora", "127.0.0.1", 43863, base_env={}, known_version="1.1.0")
    assert old.connection_args() == [
        "--coordinator-addr",
        "127.0.0.1",
        "--coordinator-port",
        "43863",
    ]
    assert new.connection_args() == []  # 1.x reads DORA_COORDINATOR_* from env()
    assert new.env()["DORA_COORDINATOR_PORT"] == "43863"
    assert (old.control_port(), versions.default_control_port("0.3.13")) == (43863, 6012)
    assert versions.default_control_port("1.1.0") == 6013


def test_version_differences_in_one_place() -> None:
    assert versions.is_legacy("0.3.13") and not versions.is_legacy("1.1.0")
    assert not versions.is_legacy(None)  # unknown: taken as current
    assert versions.teardown_commands("0.3.13") == [("destroy",)]
    assert ("down", "--force") in versions.teardown_commands("1.1.0")
    old = versions.coordinator_args("0.3.13", 1001, 1002, Path("/x/store.redb"))
    assert old[old.index("--port") + 1] == "1001"
    assert old[old.index("--control-port") + 1] == "1002"
    assert "--store" not in old
    new = versions.coordinator_args("1.1.0", 1001, 1002, Path("/x/store.redb"))
    assert new[new.index("--port") + 1] == "1002" and "--control-port" not in new
    assert "--zenoh-no-multicast" not in versions.daemon_args("0.3.13", 1, 2)
    assert "--zenoh-no-multicast" in versions.daemon_args("1.1.0", 1, 2)
    assert (versions.default_grace_s("0.3.13"), versions.default_grace_s("1.1.0")) == (15.0, 10.0)
    assert (versions.has_sigterm_step("0.3.13"), versions.has_sigterm_step("1.1.0")) == (
        False,
        True,
    )


def test_suggested_stop_command_fits_the_version() -> None:
    uuid = "01a21363-477a-7d14-9551-318322d2cbe2"
    assert versions.stop_command("0.3.13", "robot", "5s") == (
        "dora stop --name robot --grace-duration 5s"
    )
    assert versions.stop_command("0.3.13", uuid, "5s") == f"dora stop {uuid} --grace-duration 5s"
    assert versions.stop_command("1.1.0", "robot", "5s") == "dora stop robot --grace-duration 5s"
    stats = grace.stats_by_node({"saver": [grace.StopTime(3.2, False, "none")]})
    assert grace.suggest(stats, "robot", dora_version="0.3.13").command == (
        "dora stop --name robot --grace-duration 5s"
    )


# `dora list` of 0.3.13, captured from the run behind test_gil_holder_named_and_end_per_version
LEGACY_LIST = """UUID                                  Name  Status
01a21363-477a-7d14-9551-318322d2cbe2  gc    Running
01a21363-6f5e-73b3-aec0-a033b06763a5        Failed
"""


def test_legacy_list_text_is_read() -> None:
    rows: List[Dict[str, object]] = client.parse_legacy_list(LEGACY_LIST)
    assert rows == [
        {"uuid": "01a21363-477a-7d14-9551-318322d2cbe2", "name": "gc", "status": "Running"},
        {"uuid": "01a21363-6f5e-73b3-aec0-a033b06763a5", "name": None, "status": "Failed"},
    ]


def test_python_310_gil_threads_get_their_os_ids() -> None:
    """Before 3.11 the non-pausing GIL recorder names threads by pthread id: mapped to the OS
    ids of the pausing recorder, both recorders speak of the same cruncher thread."""
    events = json.loads((FIXTURES / "pyspy" / "py310-idle.chrometrace.json").read_text())
    gil = pyspy.parse_raw((FIXTURES / "pyspy" / "py310-gil.raw.txt").read_text())
    ids = pyspy.os_thread_ids(events)
    assert ids == {140509774112448: 32460, 140509783751552: 32457}
    assert pyspy.needs_os_thread_ids(gil)
    mapped = pyspy.with_os_thread_ids(gil, ids)
    assert [(s.thread_id, s.thread) for s in mapped] == [(32460, "cruncher")]
    assert not pyspy.needs_os_thread_ids(mapped)
    tracks = pyspy.parse_chrometrace(events, origin=0.0)
    assert {t.thread_id for t in tracks} == {32460, 32457}
