"""Faults: what happens when things die under dora-doctor, or dora-doctor dies itself."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Dict

import pytest
from helpers import process_state, pyspy_recorders_of, start_inspect, wait_for

from dora_doctor import pyspy
from dora_doctor.errors import DoctorError
from dora_doctor.localdora import LocalDora
from dora_doctor.recording import read_recording


def test_pyspy_missing_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(DoctorError) as err:
        pyspy.find_pyspy()
    assert "py-spy was not found" in str(err.value) and "pip install py-spy" in str(err.value)


@pytest.mark.dora
def test_a_node_killed_mid_sample_ends_its_stream_and_is_reported(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    local_dora.start_dataflow(samples / "well_behaved.yml", "victim")
    pids = local_dora.wait_running("victim", nodes=2)
    record = tmp_path / "victim.ddrec"
    proc = start_inspect(local_dora.env, "victim", record, "--duration", "6", "--json")
    os.kill(pids["listener"], signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    nodes = {n["id"]: n for n in json.loads(out)["dataflows"][0]["nodes"]}
    assert nodes["listener"]["outcome"] == "killed"
    assert any("Signal(9)" in e for e in nodes["listener"]["evidence"])
    assert nodes["talker"]["samples"] > nodes["listener"]["samples"] > 0
    assert read_recording(record).events[0].node == "listener"


@pytest.mark.dora
def test_sigterm_ends_a_watch_like_ctrl_c(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    local_dora.start_dataflow(samples / "well_behaved.yml", "polite")
    pids = local_dora.wait_running("polite", nodes=2)
    record = tmp_path / "polite.ddrec"
    proc = start_inspect(local_dora.env, "polite", record)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "interrupted" in err and "talker" in out
    assert not read_recording(record).truncated
    assert all(process_state(p) in ("S", "R") for p in pids.values())


@pytest.mark.dora
def test_dora_doctor_killed_outright_twenty_times_leaves_no_node_paused(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """SIGKILL gives dora-doctor no chance to clean up: its py-spy recorders, in their own
    sessions, finish their one-second segment and exit, and a tracer that exits detaches."""
    local_dora.start_dataflow(samples / "gil_contention.yml", "tough")
    pids = local_dora.wait_running("tough", nodes=1)
    states: Dict[str, int] = {}
    for run in range(20):
        record = tmp_path / f"tough-{run}.ddrec"
        proc = start_inspect(local_dora.env, "tough", record)
        time.sleep(0.05 * (run % 7))  # kill at different points of a segment
        proc.kill()
        proc.communicate(timeout=30)
        wait_for(lambda: not pyspy_recorders_of(list(pids.values())), 15, "py-spy recorders ended")
        for pid in pids.values():
            state = process_state(pid)
            states[state] = states.get(state, 0) + 1
            assert state in ("S", "R"), f"run {run}: node {pid} left in state {state}"
        recording = read_recording(record)  # valid, even if cut mid-line
        assert recording.dataflows[0].name == "tough"
    assert sum(states.values()) == 20
