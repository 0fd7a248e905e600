"""Faults: what happens when things die under dora-doctor, or dora-doctor dies itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import psutil
import pytest
from helpers import process_state, pyspy_recorders_of, run_doctor, start_inspect, wait_for

from dora_doctor.analysis.verdict import R_EXIT_STATUS
from dora_doctor.capture import pyspy
from dora_doctor.dora.private import LocalDora
from dora_doctor.errors import DoctorError
from dora_doctor.recording.reader import read_recording


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
    for run in range(20):
        record = tmp_path / f"tough-{run}.ddrec"
        proc = start_inspect(local_dora.env, "tough", record)
        time.sleep(0.05 * (run % 7))  # kill at different points of a segment
        proc.kill()
        proc.communicate(timeout=30)
        wait_for(lambda: not pyspy_recorders_of(list(pids.values())), 15, "py-spy recorders ended")
        for pid in pids.values():
            state = process_state(pid)
            assert state in ("S", "R"), f"run {run}: node {pid} left in state {state}"
        recording = read_recording(record)  # valid, even if cut mid-line
        assert recording.dataflows[0].name == "tough"
    # "S" or "R" at one instant does not show a node that runs: one left stopped, or stopped
    # and continued over and over by a tracer nobody ended, would not keep computing. The
    # node's own CPU time must go on growing, by far more than a sampler's brief stops allow.
    nodes = [psutil.Process(pid) for pid in pids.values()]
    used = [sum(node.cpu_times()[:2]) for node in nodes]
    wait_for(
        lambda: all(sum(n.cpu_times()[:2]) > u + 0.5 for n, u in zip(nodes, used)),
        10,
        "every node computing on",
    )


def nodes_of(stdout: str) -> Dict[str, Dict[str, Any]]:
    (dataflow,) = json.loads(stdout)["dataflows"]
    return {n["id"]: n for n in dataflow["nodes"]}


def lines_with(text: str, *needles: str) -> List[str]:
    return [ln for ln in text.splitlines() if all(n in ln for n in needles)]


@pytest.mark.dora
def test_daemon_killed_mid_inspect_ends_the_watch_with_one_line(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """No --duration: with its daemon gone a node may never exit (nobody stops it), so the
    watch has to end by itself and say why."""
    local_dora.start_dataflow(samples / "well_behaved.yml", "orphaned")
    pids = local_dora.wait_running("orphaned", nodes=2)
    record = tmp_path / "orphaned.ddrec"
    proc = start_inspect(local_dora.env, "orphaned", record, "--json")
    daemon = local_dora.daemon_pid
    assert daemon is not None
    os.kill(daemon, signal.SIGKILL)
    out, err = said_once_gone(proc, "daemon", daemon)
    assert "Stopped watching: dora's daemon has exited" in err
    recording = read_recording(record)
    assert not recording.truncated and recording.malformed_lines == 0
    assert [e.kind for e in recording.logs if e.source == "dora-doctor"] == ["daemon-gone"]
    nodes = nodes_of(out)
    for node in nodes.values():  # each either ended after its daemon, or is a named orphan
        assert node["samples"] > 0, node
        # dora's silence after its daemon died says nothing: clean only from the exit status
        # read from /proc before the process was reaped
        assert node["outcome"] != "clean" or R_EXIT_STATUS in node["rests_on"], node
        assert any("daemon exited" in e for e in node["evidence"]), node
    assert all(process_state(p) in ("S", "R", "Z", "gone") for p in pids.values())
    assert pyspy_recorders_of(list(pids.values())) == []


def said_once_gone(proc: "subprocess.Popen[str]", which: str, pid: int) -> "tuple[str, str]":
    """inspect's output once it ended: exit 0, no traceback, and one line that dora's
    ``which`` (daemon or coordinator) with this pid has exited."""
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    gone = lines_with(err, f"dora-doctor: dora's {which}", "has exited")
    assert len(gone) == 1 and f"pid {pid}" in gone[0], err
    return out, err


@pytest.mark.dora
def test_coordinator_killed_mid_inspect_falls_back_to_process_exits(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    local_dora.start_dataflow(samples / "well_behaved.yml", "headless")
    pids = local_dora.wait_running("headless", nodes=2)
    record = tmp_path / "headless.ddrec"
    proc = start_inspect(local_dora.env, "headless", record, "--json")
    coordinator = local_dora.coordinator_pid
    assert coordinator is not None
    os.kill(coordinator, signal.SIGKILL)
    wait_for(lambda: "coordinator-gone" in record.read_text(), 15, "the watch saw it go")
    for pid in pids.values():  # the nodes end; only their process exits can tell
        os.kill(pid, signal.SIGKILL)
    out, err = said_once_gone(proc, "coordinator", coordinator)
    assert "Stopped watching: every node process has exited" in err
    recording = read_recording(record)
    assert not recording.truncated
    assert {e.node for e in recording.events if e.kind == "exited"} == set(pids)
    for node in nodes_of(out).values():
        assert node["outcome"] == "killed", node  # the daemon, still alive, logged Signal(9)
        assert any("coordinator exited" in e for e in node["evidence"]), node
    assert pyspy_recorders_of(list(pids.values())) == []


def _start_tracer(kind: str, pid: int, workdir: Path) -> "subprocess.Popen[str]":
    """A tracer of someone else's attached to ``pid``: strace holds it for good, a blocking
    py-spy recorder pauses it a hundred times a second."""
    if kind == "strace":
        strace = shutil.which("strace")
        if strace is None:
            pytest.skip("strace is not installed")
        tracer = subprocess.Popen(
            [strace, "-p", str(pid), "-o", os.devnull],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        wait_for(lambda: pyspy.tracer_of(pid) is not None, 15, "strace attached")
        return tracer
    tracer = subprocess.Popen(
        [pyspy.find_pyspy(), "record", "--pid", str(pid), "--rate", "100", "--duration", "60"]
        + ["--format", "raw", "--output", str(workdir / "theirs.txt")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=pyspy.pyspy_env(),
    )
    assert tracer.stdout is not None
    assert "Sampling process" in tracer.stdout.readline()  # py-spy's own ready line
    return tracer


@pytest.mark.dora
@pytest.mark.parametrize("mode", ["--blocking", "--nonblocking"])
@pytest.mark.parametrize("kind", ["strace", "py-spy"])
def test_a_node_held_by_another_tracer_is_still_sampled(
    kind: str, mode: str, local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    """Measured first: with `strace -p` attached, a pausing `py-spy record` fails at once
    with "Failed to suspend process: EPERM" and a `--nonblocking` one works; a second,
    pausing py-spy costs some samples but both work. dora-doctor's default never pauses,
    so only `--blocking` has to fall back."""
    local_dora.start_dataflow(samples / "well_behaved.yml", "traced")
    pids = local_dora.wait_running("traced", nodes=2)
    victim = pids["listener"]
    record = tmp_path / "traced.ddrec"
    tracer = _start_tracer(kind, victim, tmp_path)
    try:
        result = run_doctor(
            "inspect", "traced", "--duration", "3", "--json", "--record", str(record), mode,
            env=local_dora.env, timeout=120,
        )  # fmt: skip
    finally:
        tracer.send_signal(signal.SIGINT)  # strace detaches, py-spy resumes and writes
        tracer.communicate(timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    nodes = nodes_of(result.stdout)
    assert nodes["listener"]["skipped"] is None
    assert nodes["listener"]["samples"] >= 100 and nodes["talker"]["samples"] >= 100
    said = lines_with(result.stderr, "listener")
    degraded = [e for e in read_recording(record).events if e.kind == "sampler-degraded"]
    if mode == "--nonblocking":  # the default: nothing to fall back from, nothing to say
        assert said == [] and degraded == [], said
    elif kind == "strace":
        assert len(said) == 1 and f"traced by strace (pid {tracer.pid})" in said[0], said
        assert "--nonblocking" in said[0]
        assert [e.node for e in degraded] == ["listener"]
        assert any("--nonblocking" in e for e in nodes["listener"]["evidence"])
    else:  # a collision may or may not happen; if it did, it was said once, plainly
        assert len(said) == len(degraded) <= 1
    assert all(process_state(p) in ("S", "R") for p in pids.values())
    assert pyspy_recorders_of([victim]) == []  # ours are gone and theirs was ended above


def _nobody_can_run_dora_doctor() -> Optional[str]:
    """Why this machine cannot run dora-doctor as `nobody`, or None.

    The venv's interpreter lives under /root, which `nobody` cannot enter, so the system
    interpreter of the same version runs dora-doctor's code (importable via PYTHONPATH).
    """
    import pwd

    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "no user `nobody` on this machine"
    if os.geteuid() != 0:
        return "needs root, to start nodes `nobody` may not trace"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.stdout.strip() != "%d.%d" % sys.version_info[:2]:
        return f"needs {SYSTEM_PYTHON} of the venv's Python version"
    site = Path(sysconfig.get_paths()["purelib"])
    for path in (REPO / "dora_doctor", site, Path(pyspy.find_pyspy())):
        for folder in [path, *path.parents]:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return f"{folder} is closed to other users"
    return None


SYSTEM_PYTHON = "/usr/bin/python3"
REPO = Path(__file__).resolve().parent.parent


@pytest.mark.dora
def test_unprivileged_user_through_the_full_cli_gets_one_line(
    local_dora: LocalDora, samples: Path
) -> None:
    """`dora-doctor inspect` as `nobody` against nodes root started: exit 1, one error line
    naming the three ways to get ptrace rights, no traceback, no node paused."""
    why_not = _nobody_can_run_dora_doctor()
    if why_not:
        pytest.skip(why_not)
    local_dora.start_dataflow(samples / "well_behaved.yml", "rooted")
    pids = local_dora.wait_running("rooted", nodes=2)
    tools = Path(tempfile.mkdtemp(prefix="dora-doctor-nobody-"))  # pytest's tmp is root-only
    try:
        tools.chmod(0o755)
        dora = tools / "dora"  # dora's entry script names the venv's (unreachable) python
        dora.write_text(
            f"#!{SYSTEM_PYTHON}\nimport sys\nfrom dora_cli import py_main\nsys.exit(py_main())\n"
        )
        dora.chmod(0o755)
        env = {
            "PYTHONPATH": f"{REPO}:{sysconfig.get_paths()['purelib']}",
            "PATH": f"{Path(pyspy.find_pyspy()).parent}:/usr/bin:/bin",
            "HOME": str(tools),
            "DORA_COORDINATOR_ADDR": "127.0.0.1",
            "DORA_COORDINATOR_PORT": str(local_dora.coordinator_port),
        }

        def as_nobody(*argv: str) -> "subprocess.CompletedProcess[str]":
            return subprocess.run(
                [SYSTEM_PYTHON, *argv], env=env, cwd=tools, user="nobody", group="nogroup",
                extra_groups=[], capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip

        result = as_nobody(
            "-m", "dora_doctor", "inspect", "rooted", "--duration", "5", "--dora", str(dora)
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        errors = lines_with(result.stderr, "dora-doctor: error:")
        assert len(errors) == 1, result.stderr
        assert "py-spy may not read process" in errors[0]
        for way in ("sudo", "CAP_SYS_PTRACE", "ptrace_scope"):
            assert way in errors[0]
        assert len(result.stderr.strip().splitlines()) == 2  # "inspecting rooted (…)" first
        # The coordinator's and daemon's logs (and working directories) are closed to
        # nobody too: looking for them finds nothing, and does not crash.
        probe = as_nobody(
            "-c",
            "from dora_doctor.model import NodeProcess\n"
            "from dora_doctor.capture.endwatch import find_dora_processes\n"
            "from dora_doctor.capture.logtail import find_log_files\n"
            f"nodes = [NodeProcess(id=n, dataflow='d', pid=p) for n, p in {pids!r}.items()]\n"
            f"files = find_log_files(nodes, {local_dora.coordinator_port})\n"
            f"seen = find_dora_processes(nodes, {local_dora.coordinator_port})\n"
            "print(files.coordinator, len(files.daemons), sorted(p.role for p in seen))\n",
        )
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.split(maxsplit=2)[:2] == ["None", "0"], probe.stdout
        assert "daemon" in probe.stdout  # its process is watched all the same
    finally:
        shutil.rmtree(tools, ignore_errors=True)
    assert all(process_state(p) in ("S", "R") for p in pids.values())
