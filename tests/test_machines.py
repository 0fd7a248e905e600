"""A dataflow spread over two daemons (machine ids A and B): discovery, ``inspect --machine``,
``merge`` and ``postmortem`` of several daemons' logs.

The end-to-end tests run two real daemons with machine ids on this host (loopback), the way a
two-machine deployment is wired; the unit tests read the real logs of such a run
(``tests/fixtures/dora-1.1.0/two-daemons/``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import jsonschema
import psutil
import pytest
from helpers import assert_recording_lines_valid, run_doctor, start_inspect

from dora_doctor.analysis.diagnose import report_from_recording
from dora_doctor.analysis.postmortem import postmortem
from dora_doctor.dora import machines
from dora_doctor.dora.discover import dataflows_from_environ
from dora_doctor.dora.private import LocalDora, absolute_node_paths
from dora_doctor.errors import DoctorError
from dora_doctor.logs import machines as log_machines
from dora_doctor.model import Dataflow, NodeProcess
from dora_doctor.recording.merge import merge
from dora_doctor.recording.reader import read_recording
from dora_doctor.recording.writer import RecordingWriter
from dora_doctor.report import RenderOptions, registry

ROOT = Path(__file__).resolve().parent.parent
TWO = ROOT / "tests" / "fixtures" / "dora-1.1.0" / "two-daemons"
RECORDINGS = ROOT / "tests" / "fixtures" / "recordings"
UUID = "01a21368-9868-72a7-9ce9-764825534992"


def report_schema() -> Dict[str, Any]:
    loaded: Dict[str, Any] = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    return loaded


def nodes_of(report: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    (dataflow,) = report["dataflows"]
    return {n["id"]: n for n in dataflow["nodes"]}


# --- unit: machines from logs and from a node's environment --------------------------------


def test_machine_of_a_daemon_log_by_name_and_of_a_node_log_by_folder() -> None:
    assert log_machines.machine_of_log(TWO / "machine-b" / "out" / "dora-daemon-B.txt") == "B"
    assert log_machines.machine_of_log(TWO / "machine-a" / "out" / "dora-daemon.txt") is None
    (talker_log,) = (TWO / "machine-b" / "_work").rglob("log_talker.jsonl")
    assert log_machines.machine_of_log(talker_log) == "B"


def test_machine_in_a_daemon_line_and_deployments_in_the_spawn_line() -> None:
    daemon_b = (TWO / "machine-b" / "out" / "dora-daemon-B.txt").read_text().splitlines()
    assert {log_machines.machine_in_line(line) for line in daemon_b} == {None, "B"}
    unnamed = (TWO / "machine-a" / "out" / "dora-daemon.txt").read_text().splitlines()
    assert {log_machines.machine_in_line(line) for line in unnamed} == {None}
    coordinator = (TWO / "machine-a" / "out" / "dora-coordinator.txt").read_text().splitlines()
    found = [log_machines.deployments_in_line(line) for line in coordinator]
    assert [f for f in found if f[1]] == [(UUID, {"crunch": "A", "talker": "B"})]


def test_deployments_from_a_node_config() -> None:
    config = (
        "dataflow_id: x\nnode_id: crunch\ndaemon_communication: !Tcp\n"
        "  socket_addr: 127.0.0.1:34757\ndataflow_descriptor:\n  nodes:\n"
        "  - id: crunch\n    deploy:\n      machine: A\n      working_dir: null\n"
        "  - id: talker\n    deploy:\n      machine: B\n  - id: free\n    deploy: null\n"
    )
    assert machines.deployments(config) == {"crunch": "A", "talker": "B"}
    assert machines.deployments("not: [yaml") == {}


def test_a_pid_that_is_not_the_node_here_is_a_remote_node() -> None:
    """dora reports each node's PID on its own machine. Here a real process plays node
    crunch of machine A (its environment is what dora gives a node); talker's PID (on B) is
    nobody here, another node's PID is this test process, and a node of no known machine
    whose process is gone has simply exited."""
    config = (
        f"dataflow_id: {UUID}\nnode_id: crunch\ndaemon_communication: !Tcp\n"
        "  socket_addr: 127.0.0.1:1\ndataflow_descriptor:\n  nodes:\n"
        "  - id: crunch\n    deploy:\n      machine: A\n"
        "  - id: talker\n    deploy:\n      machine: B\n"
    )
    env = {**os.environ, "DORA_NODE_CONFIG": config, "DORA_MACHINE_ID": "A"}
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env) as proc:
        try:
            crunch = NodeProcess(id="crunch", dataflow=UUID, pid=proc.pid, status="Running")
            talker = NodeProcess(id="talker", dataflow=UUID, pid=_free_pid(), status="Running")
            someone = NodeProcess(id="other", dataflow=UUID, pid=os.getpid(), status="Running")
            gone = NodeProcess(id="done", dataflow=UUID, pid=_free_pid(), status="Running")
            dataflow = Dataflow(uuid=UUID, name="two", nodes=[crunch, talker, someone, gone])
            machines.locate([dataflow])
        finally:
            proc.kill()
    assert (crunch.machine, crunch.remote, crunch.skip_reason) == ("A", False, None)
    assert (talker.machine, gone.machine) == ("B", None)
    for node in (talker, someone):
        assert node.remote and node.sample_pid is None
        assert node.skip_reason is not None and node.skip_reason.startswith("remote, not sampled")
        assert "dora-doctor merge" in node.skip_reason
    assert talker.skip_reason is not None
    assert "dora-doctor inspect --machine B" in talker.skip_reason
    assert not gone.remote  # it ended: dora-doctor says so elsewhere, not "remote"


def _free_pid() -> int:
    pid = 4_000_000
    while psutil.pid_exists(pid):
        pid += 1
    return pid


def test_inspect_machine_must_name_a_machine_of_the_dataflow() -> None:
    dataflow = Dataflow(
        uuid=UUID,
        name="two",
        nodes=[NodeProcess(id="crunch", dataflow=UUID, machine="A")],
    )
    with pytest.raises(DoctorError, match="--machine C: no node of two runs on it"):
        machines.restrict_to_machine(dataflow, "C")
    machines.restrict_to_machine(dataflow, "A")
    assert not dataflow.nodes[0].remote


# --- unit: postmortem of several daemons' out/ folders -------------------------------------


def test_postmortem_of_two_daemons_names_each_nodes_machine() -> None:
    result = postmortem([str(TWO / "machine-a" / "out"), str(TWO / "machine-b" / "out")])
    data = json.loads(registry.POSTMORTEM["json"].render(result, RenderOptions()))
    jsonschema.validate(data, report_schema())
    nodes = nodes_of(data)
    assert (nodes["crunch"]["machine"], nodes["crunch"]["outcome"]) == ("A", "terminated")
    assert nodes["crunch"]["stop_duration_s"] == pytest.approx(2.01, abs=0.01)
    assert (nodes["talker"]["machine"], nodes["talker"]["outcome"]) == ("B", "clean")
    assert data["postmortem"]["machines"] == {"A": ["crunch"], "B": ["talker"]}
    timeline = data["postmortem"]["timeline"]
    times = [entry["time"] for entry in timeline]
    assert times == sorted(times)  # one timeline by wall clock, over both machines' files
    assert [(e["machine"], e["kind"]) for e in timeline] == [
        (None, "stop-request"),
        ("B", "dataflow-end"),
        ("A", "node-exit"),
        ("A", "dataflow-end"),
    ]


def test_postmortem_terminal_shows_machines_and_the_merged_timeline() -> None:
    result = run_doctor(
        "--no-color", "postmortem", str(TWO / "machine-a" / "out"), str(TWO / "machine-b" / "out")
    )
    assert result.returncode == 0, result.stderr
    assert "machine" in result.stdout and "timeline of all machines" in result.stdout
    assert "every node on B has ended" in result.stdout


def test_postmortem_of_a_whole_daemon_folder_places_its_node_logs() -> None:
    """Only the node log says talker ran (a clean exit leaves no daemon line): its folder,
    beside ``out/dora-daemon-B.txt``, says where."""
    result = postmortem([str(TWO / "machine-b")])
    talker = nodes_of(result.report.to_dict())["talker"]
    assert talker["machine"] == "B"


# --- unit: merge refusals -------------------------------------------------------------------


def _two_dataflows() -> Tuple[Path, Path]:
    found = sorted(RECORDINGS.glob("*.ddrec"))
    by_uuid: Dict[str, Path] = {}
    for path in found:
        by_uuid.setdefault(read_recording(path).dataflows[0].uuid, path)
    first, second = list(by_uuid.values())[:2]
    return first, second


def test_merge_refuses_different_dataflows_a_newer_schema_and_an_existing_output(
    tmp_path: Path,
) -> None:
    first, second = _two_dataflows()
    out = tmp_path / "merged.ddrec"
    result = run_doctor("merge", str(first), str(second), "-o", str(out))
    assert result.returncode == 2
    assert "merge only recordings of the same dataflow" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()

    future = tmp_path / "future.ddrec"
    lines = first.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["schema"] = "dora-doctor.recording/9"
    future.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    result = run_doctor("merge", str(first), str(future), "-o", str(out))
    assert result.returncode == 2 and "newer than this dora-doctor reads" in result.stderr
    assert not out.exists()

    out.write_text("mine")
    result = run_doctor("merge", str(first), str(first), "-o", str(out))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert out.read_text() == "mine"


def test_merge_refuses_the_same_node_sampled_twice_at_once(tmp_path: Path) -> None:
    first, _ = _two_dataflows()
    with pytest.raises(DoctorError, match="sampled in both"):
        merge([first, first], tmp_path / "twice.ddrec")
    assert not (tmp_path / "twice.ddrec").exists()


@pytest.mark.parametrize("name", ["wb.ddrec", "mx.ddrec"])
def test_a_recording_split_by_node_merges_back_to_the_same_report(
    name: str, tmp_path: Path
) -> None:
    """Split a real two-node recording as two machines would have recorded it (each file its
    own frame table, its own header; the log lines in both), merge, and report again."""
    original = read_recording(RECORDINGS / name)
    nodes = sorted(n.id for n in original.dataflows[0].nodes if n.sample_pid)
    parts = []
    for index, mine in enumerate(([nodes[0]], nodes[1:])):
        header = json.loads((RECORDINGS / name).read_text().splitlines()[0])
        for node in header["dataflows"][0]["nodes"]:
            if node["id"] not in mine:
                node["sample_pid"], node["skip_reason"] = None, "remote, not sampled here"
        path = tmp_path / f"part{index}.ddrec"
        with RecordingWriter(path, header) as writer:
            samples = [*original.stacks, *original.gil, *getattr(original, "cpu", [])]
            for record in samples:
                if record.node in mine:
                    writer.write(record)
            for event in [*original.events, *original.logs]:
                writer.write(event)
        parts.append(path)
    merged = merge(parts, tmp_path / "merged.ddrec")
    assert merged.duplicates == len(original.logs) + len(original.events)
    assert sorted(n for ns in merged.machines.values() for n in ns) == nodes
    again = read_recording(merged.output)
    assert again.malformed_lines == 0 and len(again.stacks) == len(original.stacks)
    assert [s.start for s in again.stacks] == sorted(s.start for s in again.stacks)
    assert len(again.header["merged_from"]) == 2
    before = nodes_of(report_from_recording(original).to_dict())
    after = nodes_of(report_from_recording(again).to_dict())
    for node in nodes:
        for key in ("samples", "outcome", "stop_duration_s", "cause", "gil", "evidence"):
            assert after[node][key] == before[node][key], (node, key)


# --- end to end: two real daemons -----------------------------------------------------------


@pytest.fixture
def two_machines(local_dora: LocalDora, samples: Path, tmp_path: Path) -> Iterator[LocalDora]:
    """``samples/two_machines.yml`` running on daemons A (beside the coordinator, as on the
    machine that runs it) and B (in its own folder)."""
    local_dora.add_daemon("A", local_dora.workdir)
    local_dora.add_daemon("B", tmp_path / "machine-b")
    yml = absolute_node_paths(samples / "two_machines.yml", samples / "two_machines.abs.yml")
    local_dora.start_dataflow(yml, "two")
    local_dora.wait_running("two", nodes=2)
    yield local_dora


def doctor(local: LocalDora, *args: str) -> subprocess.CompletedProcess[str]:
    return run_doctor(*args, env=local.env, timeout=180)


@pytest.mark.dora
def test_inspect_finds_samples_and_diagnoses_both_machines_then_postmortem(
    two_machines: LocalDora, tmp_path: Path
) -> None:
    local = two_machines
    extra = [d.pid for d in local.extra_daemons]
    result = doctor(local, "inspect", "two", "--stop", "--grace-duration", "2s", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, report_schema())
    nodes = nodes_of(report)
    crunch, talker = nodes["crunch"], nodes["talker"]
    assert (crunch["machine"], talker["machine"]) == ("A", "B")
    assert crunch["samples"] >= 100 and talker["samples"] >= 100, (crunch, talker)
    assert crunch["skipped"] is None and talker["skipped"] is None
    assert crunch["cause"] == "gil-contention", crunch
    assert crunch["gil"]["holders"][0]["function"] == "crunch_numbers"
    assert crunch["outcome"] == "terminated"
    assert talker["outcome"] == "clean" and talker["cause"] == "none", talker

    (machine_b,) = [d for d in local.extra_daemons if d.machine_id == "B"]
    logs = [str(local.workdir / "out"), str(machine_b.workdir / "out")]
    result = doctor(local, "postmortem", *logs, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    nodes = nodes_of(data)
    assert (nodes["crunch"]["machine"], nodes["crunch"]["outcome"]) == ("A", "terminated")
    assert (nodes["talker"]["machine"], nodes["talker"]["outcome"]) == ("B", "clean")
    assert data["postmortem"]["machines"] == {"A": ["crunch"], "B": ["talker"]}

    local.close()
    assert not [pid for pid in extra if psutil.pid_exists(pid) and _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.dora
def test_one_inspect_per_machine_then_merge_reports_both(
    two_machines: LocalDora, tmp_path: Path
) -> None:
    local = two_machines
    a_file, b_file = tmp_path / "A.ddrec", tmp_path / "B.ddrec"
    on_a = start_inspect(local.env, "two", a_file, "--machine", "A")
    try:
        on_b = doctor(
            local, "inspect", "two", "--machine", "B", "--record", str(b_file), "--json",
            "--stop", "--grace-duration", "2s", "--stop-after", "2s",
        )  # fmt: skip
        assert on_b.returncode == 0, on_b.stderr
        out_a, err_a = on_a.communicate(timeout=60)
    finally:
        if on_a.poll() is None:
            on_a.kill()
    assert on_a.returncode == 0, err_a

    only_b = nodes_of(json.loads(on_b.stdout))
    assert only_b["talker"]["samples"] >= 100 and only_b["talker"]["machine"] == "B"
    assert only_b["crunch"]["samples"] == 0 and only_b["crunch"]["machine"] == "A"
    assert only_b["crunch"]["skipped"].startswith("remote, not sampled here")
    assert only_b["crunch"]["outcome"] == "unknown"  # no line of its daemon's is read on B
    assert "dora-doctor inspect --machine A" in only_b["crunch"]["skipped"]
    recorded_b = read_recording(b_file)
    assert {s.node for s in recorded_b.stacks} == {"talker"}
    assert {s.node for s in read_recording(a_file).stacks} == {"crunch"}

    merged = tmp_path / "merged.ddrec"
    result = doctor(local, "merge", str(a_file), str(b_file), "-o", str(merged))
    assert result.returncode == 0, result.stderr
    assert "crunch on A" in result.stderr and "talker on B" in result.stderr
    assert_recording_lines_valid(merged.read_text())
    recording = read_recording(merged)
    assert not recording.truncated and recording.malformed_lines == 0
    assert {s.node for s in recording.stacks} == {"crunch", "talker"}
    starts = [s.start for s in recording.stacks]
    assert starts == sorted(starts)

    result = doctor(local, "report", str(merged), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, report_schema())
    nodes = nodes_of(report)
    crunch, talker = nodes["crunch"], nodes["talker"]
    assert crunch["samples"] >= 100 and talker["samples"] >= 100
    assert (crunch["machine"], talker["machine"]) == ("A", "B")
    assert crunch["cause"] == "gil-contention" and crunch["outcome"] == "terminated", crunch
    assert talker["outcome"] == "clean", talker
    result = doctor(local, "--no-color", "report", str(merged))
    assert result.returncode == 0 and "machine" in result.stdout


def test_the_sample_pins_each_node_to_a_machine(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    yml = absolute_node_paths(
        tmp_path / "samples" / "two_machines.yml", tmp_path / "two_machines.abs.yml"
    )
    import yaml

    nodes = {n["id"]: n for n in yaml.safe_load(yml.read_text())["nodes"]}
    assert nodes["crunch"]["deploy"] == {"machine": "A"}
    assert nodes["talker"]["deploy"] == {"machine": "B"}
    assert all(Path(n["path"]).is_absolute() and Path(n["path"]).is_file() for n in nodes.values())


# The environment dora 0.4.1 and 0.5.0 give their Python operator runtime (`python -uc "import
# dora; dora.start_runtime() # counter"`), trimmed from a real 0.5.0 run: no DORA_NODE_CONFIG,
# the node's own config is the `node:` part of DORA_RUNTIME_CONFIG.
RUNTIME_CONFIG_050 = (
    "node:\n"
    f"  dataflow_id: {UUID}\n"
    "  node_id: counter\n"
    "  run_config:\n    inputs:\n      tally/tick: dora/timer/millis/100\n    outputs: []\n"
    "  daemon_communication: !Tcp\n    socket_addr: 127.0.0.1:42097\n"
    "  dataflow_descriptor:\n    nodes:\n    - id: counter\n      operators:\n"
    "      - id: tally\n        inputs:\n          tick: dora/timer/millis/100\n"
    "        python: nodes/operator_ok.py\n"
    "operators:\n- id: tally\n  config:\n    source: !Python\n      source: nodes/operator_ok.py\n"
)


def test_the_operator_runtime_of_old_lines_is_found_by_its_runtime_config() -> None:
    """0.4.1 and 0.5.0: the runtime's PID from `dora node list` is here and is node counter
    (it was taken for another machine's, never sampled: python false, 0 samples)."""
    env = {**os.environ, "DORA_RUNTIME_CONFIG": RUNTIME_CONFIG_050}
    env.pop("DORA_NODE_CONFIG", None)
    assert machines.node_config(env)[1]["node_id"] == "counter"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env) as proc:
        try:
            counter = NodeProcess(id="counter", dataflow=UUID, pid=proc.pid, status="Running")
            machines.locate([Dataflow(uuid=UUID, name="op", nodes=[counter])])
            (found,) = dataflows_from_environ([psutil.Process(proc.pid)])
        finally:
            proc.kill()
    assert (counter.remote, counter.skip_reason) == (False, None)
    assert (found.uuid, [(n.id, n.pid) for n in found.nodes]) == (UUID, [("counter", proc.pid)])
    assert machines.node_config({"DORA_RUNTIME_CONFIG": "node: [not a map"}) == ("", {})
