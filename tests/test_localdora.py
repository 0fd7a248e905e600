"""LocalDora against a real dora 1.1.0: nodes start, stop, and nothing outlives ``close()``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import psutil
import pytest

from dora_doctor.dora.private import LocalDora, LocalDoraError

pytestmark = pytest.mark.dora


def _gone(pids: Iterable[int], timeout: float = 5.0) -> bool:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_nodes_run_stop_and_nothing_outlives_close(local_dora: LocalDora, samples: Path) -> None:
    uuid = local_dora.start_dataflow(samples / "well_behaved.yml", "wb")
    assert len(uuid) == 36

    pids = local_dora.wait_running("wb", nodes=2, timeout=20)
    assert set(pids) == {"talker", "listener"}
    for pid in pids.values():
        proc = psutil.Process(pid)
        assert proc.is_running()
        assert any(arg.endswith("well_behaved.py") for arg in proc.cmdline())
        assert local_dora.daemon_pid in {p.pid for p in proc.parents()}

    stopped = local_dora.stop_dataflow("wb", grace="2s")
    assert stopped.returncode == 0, stopped.stderr
    assert _gone(pids.values())

    servers = [local_dora.coordinator_pid, local_dora.daemon_pid]
    local_dora.close()
    assert _gone(p for p in servers if p is not None)
    local_dora.close()  # idempotent


def test_close_ends_a_node_that_ignores_stop(local_dora: LocalDora, samples: Path) -> None:
    local_dora.start_dataflow(samples / "ignores_stop.yml", "deaf")
    pids = local_dora.wait_running("deaf", nodes=1, timeout=20)
    local_dora.close()
    assert _gone(pids.values())
    servers = [local_dora.coordinator_pid, local_dora.daemon_pid]
    assert _gone(p for p in servers if p is not None)


def test_instances_do_not_see_each_other(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    with LocalDora.start(tmp_path / "other") as other:
        assert other.coordinator_port != local_dora.coordinator_port
        local_dora.start_dataflow(samples / "well_behaved.yml", "mine")
        assert other.cli("list", "--format", "json").stdout.strip() == ""
        assert "mine" in local_dora.cli("list", "--format", "json").stdout


def test_start_failure_is_reported(tmp_path: Path) -> None:
    with pytest.raises(LocalDoraError, match="coordinator exited"):
        LocalDora.start(tmp_path / "broken", dora="/bin/false", timeout=5)
