"""dora-doctor on every dora release line on PyPI, end to end, plus the version rules.

One cell per release line (``dora_versions.CELLS``): 0.3.13 (nodes on Python 3.10), 0.4.1,
0.5.0, 1.0.1 (nodes on the Python of the tests) and 1.1.0 (nodes on Python 3.13). Each cell
gets one private dora for the whole module; each test starts its own dataflows on it. Per cell:
the facts of its row in :mod:`dora_doctor.dora.versions` are checked against the real CLI,
``inspect --stop --grace-duration 2s`` is run on a C-call holder and on well-behaved nodes with
each outcome checked against what the test itself saw of the process, and tune-grace's
suggested command is run for real. Venvs are made once and cached (see ``dora_versions``);
``pytest -m "not matrix"`` leaves the end-to-end part out.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import stat
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import psutil
import pytest
from dora_versions import CELLS, Cell, dora_venv, node_venv, require
from helpers import assert_c_call_holder, run_doctor, start_inspect

from dora_doctor.analysis import grace
from dora_doctor.analysis.verdict import R_EXIT_STATUS
from dora_doctor.capture import pyspy
from dora_doctor.dora import client, versions
from dora_doctor.dora.private import LocalDora
from dora_doctor.errors import USAGE, DoctorError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
GRACE_S = 2.0


# --- the matrix, end to end --------------------------------------------------------------


class CellDora:
    """One cell's private dora, shared by the module's tests, and its samples' copy."""

    def __init__(self, cell: Cell, local: LocalDora, samples: Path) -> None:
        self.cell, self.local, self.samples = cell, local, samples
        self.line = versions.release_line(local.version)


@pytest.fixture(scope="module", params=CELLS, ids=[f"dora-{c.dora}-py{c.python}" for c in CELLS])
def cell(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CellDora]:
    """A private dora of one matrix cell, its nodes on that cell's Python (one per module:
    starting one costs a second or two, and the tests' dataflows have names of their own)."""
    which: Cell = request.param
    root = tmp_path_factory.mktemp(f"dora-{which.dora}")
    samples = root / "samples"
    shutil.copytree(SAMPLES, samples, ignore=shutil.ignore_patterns("out", "__pycache__"))
    if which.own_venv:
        venv = require(dora_venv, which.dora, which.python)
        local = LocalDora.start(root / "dora", dora=str(venv.dora))
    else:
        venv = require(node_venv, which.python, which.dora)
        local = LocalDora.start(root / "dora", node_python=venv.python)
    try:
        assert local.version == which.dora
        yield CellDora(which, local, samples)
    finally:
        local.close()


def _doctor_args(local: LocalDora) -> List[str]:
    """This instance's dora, named as a user would name it (before 1.0 the CLI reads no
    DORA_COORDINATOR_* variables: the port must be given)."""
    return ["--json", "--dora", local.dora, "--coordinator-port", str(local.coordinator_port)]


class ExitWatch:
    """The test's own eye on node processes: when each PID vanished (or turned zombie),
    polled every 5 ms, apart from anything dora-doctor measures."""

    def __init__(self, pids: Dict[str, int]) -> None:
        self.pids = pids
        self.gone: Dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.gone) < len(self.pids):
            for node, pid in self.pids.items():
                if node in self.gone:
                    continue
                try:
                    if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                        self.gone[node] = time.time()
                except psutil.NoSuchProcess:
                    self.gone[node] = time.time()
            time.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


_STOP_LINE = re.compile(r"successfully send stop dataflow `(?P<uuid>[0-9a-f-]{36})`")
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z")


def stop_sent_at(local: LocalDora, uuid: str) -> float:
    """When dora's coordinator sent STOP for ``uuid``, from its own log line (JSON lines or
    0.3.x text: either way the line starts with its UTC timestamp)."""
    log = local.workdir / "out" / "dora-coordinator.txt"
    for line in log.read_text(errors="replace").splitlines():
        found = _STOP_LINE.search(line)
        if found and found["uuid"] == uuid:
            stamp = _STAMP.search(line)
            assert stamp, line
            return datetime.fromisoformat(stamp[1] + "+00:00").timestamp()
    raise AssertionError(f"no stop line for {uuid} in {log}")


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler (``SigCgt`` bit 15-1)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M)[1], 16)  # type: ignore[index]
    return bool(mask & (1 << 14))


def inspect_stop(
    cell: CellDora, yml: str, name: str, nodes: int
) -> tuple[Dict[str, Dict[str, Any]], Dict[str, float], float, Dict[str, int]]:
    """Start ``yml`` as ``name``, run ``inspect --stop --grace-duration 2s`` on it while the
    test watches the node processes itself; (nodes by id, seconds from dora's STOP to each
    process end as the test saw it, ..., PIDs)."""
    local = cell.local
    uuid = local.start_dataflow(cell.samples / yml, name)
    pids = local.wait_running(name, nodes=nodes)
    handlers = {node: catches_sigterm(pid) for node, pid in pids.items()}
    watch = ExitWatch(pids)
    try:
        result = run_doctor(
            "inspect",
            name,
            *_doctor_args(local),
            "--stop",
            "--grace-duration",
            f"{GRACE_S:g}s",
            "--stop-after",
            "2s",
            env=local.env,
        )
    finally:
        watch.close()
    assert result.returncode == 0, result.stderr
    assert f"dora {local.version} at 127.0.0.1:{local.coordinator_port}" in result.stderr
    # the announced command is in this version's syntax
    named = "--name " + name if cell.line.stop_name_needs_flag else name
    assert f"will run `dora stop {named} --grace-duration 2s`" in result.stderr
    report = json.loads(result.stdout)
    assert report["dora_version"] == local.version
    (dataflow,) = report["dataflows"]
    assert dataflow["name"] == name
    sent = stop_sent_at(local, uuid)
    lived = {node: gone - sent for node, gone in watch.gone.items()}
    assert sorted(lived) == sorted(pids), f"the test did not see every node end: {lived}"
    assert not any(handlers.values()), handlers  # the samples install no SIGTERM handler
    return {n["id"]: n for n in dataflow["nodes"]}, lived, sent, pids


@pytest.mark.dora
@pytest.mark.matrix
def test_c_call_holder_outcome_is_what_the_process_got(cell: CellDora) -> None:
    """crunch never reads STOP and catches no SIGTERM, so the first signal of dora's ladder
    ends it: SIGKILL at the grace on 0.3.x, SIGTERM at the grace on 0.4 and later (0.4.1
    logs no exit at all, 0.5.0 a kill line after the SIGTERM: neither may change the answer).
    The test saw it outlive the grace and end before the SIGKILL point."""
    nodes, lived, _, _ = inspect_stop(cell, "gil_contention.yml", "gc", 1)
    crunch = nodes["crunch"]
    assert lived["crunch"] >= GRACE_S - 0.05, lived  # alive until dora's first signal
    assert lived["crunch"] < GRACE_S * cell.line.sigkill_factor + 1.0 or (
        not cell.line.sigterm_step
    ), lived
    assert (crunch["python"], crunch["python_version"]) == (True, cell.cell.python)
    assert crunch["cause"] == "gil-contention"
    assert_c_call_holder(crunch)
    expected = "terminated" if cell.line.sigterm_step else "killed"
    assert crunch["outcome"] == expected, crunch["evidence"]
    assert crunch["stop_duration_s"] >= GRACE_S - 0.1
    if not cell.line.kill_line_trustworthy:
        assert not any(
            "was killed due to" in e and e.startswith("dora:") for e in crunch["evidence"]
        )


@pytest.mark.dora
@pytest.mark.matrix
def test_well_behaved_nodes_are_clean_because_they_ended_before_any_signal(
    cell: CellDora,
) -> None:
    """Both nodes leave their loop on STOP; the test saw them end well before the grace, so
    no signal was sent: clean, on 0.4.1 too, where only dora-doctor's own observation (and
    `dora stop` naming no failed node) shows it."""
    nodes, lived, _, _ = inspect_stop(cell, "well_behaved.yml", "wb", 2)
    assert sorted(nodes) == ["listener", "talker"]
    for node_id, node in nodes.items():
        assert lived[node_id] < GRACE_S - 0.3, lived  # ended before dora's first signal
        assert node["python_version"] == cell.cell.python
        assert node["outcome"] == "clean", node["evidence"]
        assert node["samples"] > 0
        # dora-doctor counts from launching `dora stop`, a little before dora's STOP line
        assert lived[node_id] - 0.05 <= node["stop_duration_s"] <= lived[node_id] + 1.0


@pytest.mark.dora
@pytest.mark.matrix
def test_a_stop_from_outside_is_read_from_this_versions_coordinator_log(
    cell: CellDora, tmp_path: Path
) -> None:
    """The user stops (in this version's syntax) while inspect watches: the stop request
    comes from this version's coordinator log (found by its control port). The nodes ended
    before any signal; where the daemon logs exits its silence means clean, on 0.4.x it
    means nothing and no `dora stop` result was seen: unknown, with the reason, unless the
    stop watch read the exit status from /proc before dora reaped the process (a race it
    sometimes wins): then clean, resting on that status and saying so."""
    local = cell.local
    local.start_dataflow(cell.samples / "well_behaved.yml", "out")
    local.wait_running("out", nodes=2)
    proc = start_inspect(local.env, "out", tmp_path / "out.ddrec", *_doctor_args(local))
    try:
        stopped = local.stop_dataflow("out", "15s")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert stopped.returncode == 0, stopped.stderr
    assert proc.returncode == 0, err
    (dataflow,) = json.loads(out)["dataflows"]
    for node in dataflow["nodes"]:
        assert "(coordinator log)" in node["evidence"][0], node["evidence"]
        if cell.line.logs_node_exits:
            assert node["outcome"] == "clean", node["evidence"]
        elif any(e.startswith("The kernel: exit status 0,") for e in node["evidence"]):
            assert node["outcome"] == "clean", node["evidence"]
            assert R_EXIT_STATUS in node["rests_on"], node["rests_on"]
        else:
            assert node["outcome"] == "unknown", node["evidence"]
            assert any("logs no node exit" in e for e in node["evidence"])


@pytest.mark.dora
@pytest.mark.matrix
def test_tune_grace_suggests_a_command_this_dora_accepts(cell: CellDora) -> None:
    """tune-grace's suggested ``dora stop`` is run as is (its words, only the executable and
    the instance's address added) against a running dataflow of that name: accepted, and
    the dataflow's nodes end."""
    local = cell.local
    yml = cell.samples / "well_behaved.yml"
    tuned = run_doctor(
        "tune-grace",
        str(yml),
        *_doctor_args(local),
        "--runs",
        "1",
        "--warmup",
        "2s",
        "--ceiling",
        "5s",
        env=local.env,
    )
    assert tuned.returncode == 0, tuned.stderr
    suggestion = json.loads(tuned.stdout)["suggestion"]
    assert suggestion["would_help"], suggestion
    words = shlex.split(suggestion["command"])
    assert words[0] == "dora" and "--grace-duration" in words
    name = words[words.index("--name") + 1] if "--name" in words else words[2]
    local.start_dataflow(yml, name)
    processes = [psutil.Process(p) for p in local.wait_running(name, nodes=2).values()]
    stopped = local.cli(*words[1:], *local.client.connection_args(), timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    gone, alive = psutil.wait_procs(processes, timeout=15)
    assert not alive, alive


@pytest.mark.dora
@pytest.mark.matrix
def test_release_line_facts_hold_on_the_real_cli(cell: CellDora) -> None:
    """The row of :mod:`dora_doctor.dora.versions` for this cell, checked against its CLI's
    own ``--help`` and against what it refuses: a name without ``--name`` on 0.3–0.5."""
    local, line = cell.local, cell.line
    assert line.tested == local.version

    def helps(*args: str) -> str:
        result = local.cli(*args, "--help", timeout=30)
        return result.stdout + result.stderr if result.returncode == 0 else ""

    commands = helps()
    teardown = line.teardown[-1][0]
    assert re.search(rf"^\s+{teardown}\s", commands, re.M), teardown
    for command, present in (
        ("validate", line.has_validate),
        ("status", line.has_status),
        ("node", line.has_node_list),
    ):
        assert bool(re.search(rf"^\s+{command}\s", commands, re.M)) == present, command
    assert ("--control-port" in helps("coordinator")) == line.split_control_port
    assert ("--zenoh-no-multicast" in helps("daemon")) == line.zenoh_no_multicast_flag
    stop_help = helps("stop")
    assert f"[default: {line.control_port}]" in stop_help
    assert ("DORA_COORDINATOR_PORT" in stop_help) == line.cli_reads_env
    assert ("--grace-duration" in stop_help) and ("--name" in stop_help)
    if line.has_validate:  # the node keys for slow starters, as this dora's parser has them
        for key, present in (
            ("startup_timeout", line.startup_timeout),
            ("health_check_timeout", line.health_check_timeout),
        ):
            yml = cell.samples / f"with_{key}.yml"
            yml.write_text(
                "nodes:\n  - id: a\n    path: nodes/well_behaved.py\n"
                f"    {key}: 5\n    inputs:\n      tick: dora/timer/millis/100\n"
            )
            checked = local.cli("validate", str(yml), timeout=30)
            assert (checked.returncode == 0) == present, (key, checked.stderr[-300:])
    # a name where the UUID goes: refused by 0.3–0.5, a running dataflow's name on 1.x
    # (0.4.1 and 0.5.0 exit 0 even then: only their words say it was refused)
    refused = local.cli("stop", "no-such-dataflow", *local.client.connection_args())
    said = refused.stderr + refused.stdout
    assert ("invalid value" in said) == line.stop_name_needs_flag, said
    assert refused.returncode != 0 or line.stop_name_needs_flag


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
    flags = ["--coordinator-addr", "127.0.0.1", "--coordinator-port", "43863"]
    assert old.connection_args() == flags
    for before_1_0 in ("0.4.1", "0.5.0"):  # their CLI has no env fallback either
        cli = client.DoraCli("dora", "127.0.0.1", 43863, base_env={}, known_version=before_1_0)
        assert cli.connection_args() == flags
    assert new.connection_args() == []  # 1.x reads DORA_COORDINATOR_* from env()
    assert new.env()["DORA_COORDINATOR_PORT"] == "43863"
    assert (old.control_port(), versions.default_control_port("0.3.13")) == (43863, 6012)
    assert versions.default_control_port("1.1.0") == 6013


def test_suggested_stop_command_fits_the_version() -> None:
    uuid = "01a21363-477a-7d14-9551-318322d2cbe2"
    assert versions.stop_command("0.3.13", "robot", "5s") == (
        "dora stop --name robot --grace-duration 5s"
    )
    assert versions.stop_command("0.3.13", uuid, "5s") == f"dora stop {uuid} --grace-duration 5s"
    assert versions.stop_command("1.1.0", "robot", "5s") == "dora stop robot --grace-duration 5s"
    for line, named in (("0.4.1", "--name robot"), ("0.5.0", "--name robot"), ("1.0.1", "robot")):
        assert (
            versions.stop_command(line, "robot", "4s") == f"dora stop {named} --grace-duration 4s"
        )
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
