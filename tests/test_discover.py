"""Discovery parsing on real dora-rs-cli 1.1.0 output (fixtures/README.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest
from helpers import wait_for

from dora_doctor.dora import client, discover, versions
from dora_doctor.errors import DoctorError
from dora_doctor.model import Dataflow, NodeProcess

FIX = Path(__file__).parent / "fixtures" / "dora-1.1.0"


def _dataflows() -> list[Dataflow]:
    rows = client.parse_json_lines((FIX / "list.jsonl").read_text())
    dataflows = discover.parse_dataflow_rows(rows)
    discover.attach_node_rows(
        dataflows, client.parse_json_lines((FIX / "node-list.jsonl").read_text())
    )
    return dataflows


def test_list_and_node_list_join_by_dataflow_name() -> None:
    (dataflow,) = _dataflows()
    assert dataflow.name == "t2"
    assert dataflow.uuid == "01a212f7-a42c-7558-9ee8-948be63dd449"
    assert dataflow.status == "Running"
    nodes = {n.id: n for n in dataflow.nodes}
    assert set(nodes) == {"hog", "ticker"}
    assert nodes["hog"].pid == 3345 and nodes["ticker"].pid == 3347
    assert all(n.dataflow == dataflow.uuid for n in nodes.values())


def test_node_config_from_environment_names_dataflow_and_node() -> None:
    ids = discover.parse_node_config((FIX / "DORA_NODE_CONFIG.yaml").read_text())
    assert ids == ("01a212f7-a42c-7558-9ee8-948be63dd449", "hog")
    assert discover.parse_node_config("not: [valid") is None
    assert discover.parse_node_config("dataflow_id: a\nnode_id: b\nx: !Tcp\n  y: 1") == ("a", "b")


def test_json_lines_ignore_noise() -> None:
    rows = client.parse_json_lines('warning: x\n{"a": 1}\n{broken\n[1]\n')
    assert rows == [{"a": 1}]


def test_select_by_name_uuid_prefix_or_the_only_one() -> None:
    one = [Dataflow("1111-aaaa", "robot", "Running")]
    assert discover.select_dataflow(one, None).name == "robot"
    assert discover.select_dataflow(one, "robot").uuid == "1111-aaaa"
    assert discover.select_dataflow(one, "1111").name == "robot"


def test_select_unknown_name_lists_the_running_ones() -> None:
    two = [Dataflow("1", "robot", "Running"), Dataflow("2", "arm", "Running")]
    with pytest.raises(DoctorError) as err:
        discover.select_dataflow(two, "nope")
    assert "robot (1)" in str(err.value) and "arm (2)" in str(err.value)
    assert err.value.exit_code == 2
    with pytest.raises(DoctorError) as err:
        discover.select_dataflow(two, None)
    assert "several dataflows" in str(err.value) and err.value.exit_code == 2


def test_select_nothing_running_is_a_failure_not_a_usage_error() -> None:
    with pytest.raises(DoctorError) as err:
        discover.select_dataflow([Dataflow("1", "old", "Finished")], None)
    assert err.value.exit_code == 1


def test_this_interpreter_is_recognised_as_python_with_its_version() -> None:
    is_python, version = discover.python_version_of(psutil.Process(os.getpid()))
    assert is_python
    assert version == f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_a_non_python_process_is_skipped_with_a_reason() -> None:
    import subprocess

    proc = subprocess.Popen(["sleep", "30"])
    try:
        node = NodeProcess(id="n", dataflow="d", pid=proc.pid)
        discover.resolve_process(node)
        assert node.python is False and node.sample_pid is None
        assert node.skip_reason == "not Python"
    finally:
        proc.kill()
        proc.wait()


def test_a_wrapper_process_resolves_to_its_python_child() -> None:
    """Like `uv run`: dora knows the wrapper's PID, py-spy needs the interpreter's."""
    import subprocess

    wrapper = subprocess.Popen(
        ["/bin/sh", "-c", f'"{sys.executable}" -c "import time; time.sleep(30)"; true']
    )
    try:
        node = NodeProcess(id="n", dataflow="d", pid=wrapper.pid)
        # ready once the shell's child has exec'd Python (a forked child is still a shell)
        wait_for(
            lambda: any(
                "time.sleep(30)" in " ".join(child.cmdline())
                for child in psutil.Process(wrapper.pid).children()
            ),
            5,
            "the wrapper's Python child",
        )
        discover.resolve_process(node)
        assert node.python is True
        assert node.sample_pid is not None and node.sample_pid != wrapper.pid
        assert psutil.Process(node.sample_pid).ppid() == wrapper.pid
    finally:
        for child in psutil.Process(wrapper.pid).children(recursive=True):
            child.kill()
        wrapper.kill()
        wrapper.wait()


def test_dora_version_is_read_from_its_banner() -> None:
    assert versions.parse_version("dora-cli 1.1.0\n") == "1.1.0"
    assert versions.version_tuple("dora-cli 0.3.13") == (0, 3, 13)
    assert versions.parse_version("nothing") is None


def test_a_node_listed_without_a_pid_yet_gets_it_from_its_environment() -> None:
    """Right after `dora start`, 1.1.0's node list gives `"status":"Unknown","pid":"-"` for
    about a second (seen on a private dora, 2026-12-01): the PID comes from DORA_NODE_CONFIG.
    So does the PID of a node whose listed process has ended (a restart's old one)."""
    import os
    import subprocess
    import sys

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    alive = os.getpid()
    rows = [
        {"node": "validate", "status": "Unknown", "pid": "-", "dataflow": "rb"},
        {"node": "talker", "status": "Running", "pid": str(alive), "dataflow": "rb"},
        {"node": "brief", "status": "Running", "pid": str(ended.pid), "dataflow": "rb"},
    ]
    (dataflow,) = discover.parse_dataflow_rows([{"uuid": "u-1", "name": "rb"}])
    discover.attach_node_rows([dataflow], rows)
    assert {n.id: n.pid for n in dataflow.nodes} == {
        "validate": None,
        "talker": alive,
        "brief": ended.pid,
    }
    by_env = [
        Dataflow(
            "u-1",
            None,
            nodes=[
                NodeProcess("validate", "u-1", pid=40),
                NodeProcess("talker", "u-1", pid=99),
                NodeProcess("brief", "u-1", pid=77),
            ],
        )
    ]
    discover._fill_from_environ([dataflow], by_env)
    # only the missing or ended PIDs are filled; what dora said of a live process is kept
    assert {n.id: n.pid for n in dataflow.nodes} == {"validate": 40, "talker": alive, "brief": 77}


def test_a_runtime_s_operators_are_read_from_its_real_config() -> None:
    """dora 1.1.0 gives a runtime process DORA_RUNTIME_CONFIG (the operators it runs) and a
    DORA_NODE_CONFIG whose descriptor lists them too: either names operator `tally`."""
    from dora_doctor.dora import descriptor, machines

    runtime = machines.load_config((FIX / "DORA_RUNTIME_CONFIG.yaml").read_text())
    assert descriptor.operator_files(runtime) == {"tally": "nodes/operator_ok.py"}
    node = machines.load_config((FIX / "DORA_NODE_CONFIG-runtime.yaml").read_text())
    assert descriptor.operator_files(node, "counter") == {"tally": "nodes/operator_ok.py"}
    assert descriptor.operator_files(node, "talker") == {}  # a plain node runs no operator
    # the singular `operator:` key, the mapping form of `python:`, and what is not an operator
    single = {"dataflow_descriptor": {"nodes": [{"id": "n", "operator": {"python": "o.py"}}]}}
    assert descriptor.operator_files(single, "n") == {"op": "o.py"}
    mapping = {"operators": [{"id": "a", "python": {"source": "a.py", "conda_env": "x"}}]}
    assert descriptor.operator_files(mapping) == {"a": "a.py"}
    hostile = {"operators": [{"id": "r", "shared-library": "r.so"}, "x", {"id": [1], "python": 1}]}
    assert descriptor.operator_files(hostile) == {}
    assert descriptor.operator_files("operators") == {}


def test_a_runtime_process_gets_its_operators_with_absolute_paths(tmp_path: Path) -> None:
    """A real process with dora's runtime config in its environment: the operator's relative
    path is made absolute against the process's working directory, where dora's runtime
    resolves it; a process without the config lists no operators."""
    import subprocess

    config = (FIX / "DORA_RUNTIME_CONFIG.yaml").read_text()
    env = {**os.environ, "DORA_RUNTIME_CONFIG": config}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], cwd=tmp_path, env=env
    )
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        node = NodeProcess(id="counter", dataflow="d", pid=proc.pid)
        discover.resolve_process(node)
        assert node.operators == {"tally": str(tmp_path / "nodes" / "operator_ok.py")}
        other = NodeProcess(id="talker", dataflow="d", pid=plain.pid)
        discover.resolve_process(other)
        assert other.python and other.operators == {}
    finally:
        for child in (proc, plain):
            child.kill()
            child.wait()
