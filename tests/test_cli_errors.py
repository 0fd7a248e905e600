"""Bad input and missing pieces: one line on stderr, exit 2 for usage, 1 for failures.

These run the real CLI entry point in a subprocess, as a user would.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
from helpers import run_doctor

HERE = Path(__file__).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_doctor(*args, timeout=120)


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_dora_executable() -> None:
    result = run("inspect", "--dora", "/nonexistent/dora")
    assert_one_line(result, 2, "/nonexistent/dora", "no such executable")


def test_no_dora_on_path(tmp_path: Path, monkeypatch: "pytest.MonkeyPatch") -> None:
    from dora_doctor.dora import client
    from dora_doctor.errors import DoctorError

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(DoctorError) as err:
        client.find_dora()
    assert "dora command was not found" in str(err.value)
    assert "pip install dora-rs-cli" in str(err.value)
    assert err.value.exit_code == 2


def test_coordinator_not_running() -> None:
    result = run("inspect", "--coordinator-port", str(free_port()))
    assert_one_line(result, 1, "no dora coordinator answers", "dora up")


def test_bad_duration() -> None:
    result = run("inspect", "--duration", "soon")
    assert_one_line(result, 2, "--duration", "'soon'")


def test_existing_record_file_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "keep.ddrec"
    target.write_text("precious")
    result = run("inspect", "--record", str(target))
    assert_one_line(result, 2, "already exists")
    assert target.read_text() == "precious"


def test_report_on_something_that_is_not_a_recording(tmp_path: Path) -> None:
    bogus = tmp_path / "x.json"
    bogus.write_text('{"hello": 1}\n')
    assert_one_line(run("report", str(bogus)), 2, "is not a dora-doctor recording")
    assert_one_line(run("report", str(tmp_path / "missing")), 2, "no such recording")


def test_unknown_option_is_a_usage_error() -> None:
    result = run("inspect", "--frobnicate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_help_lists_commands_with_examples() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "inspect" in result.stdout and "report" in result.stdout
    sub = run("inspect", "--help")
    assert "Examples:" in sub.stdout and "dora-doctor inspect robot" in sub.stdout


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("nodes: [\n  - id: a\n    path: x.py\n  bad", "is not valid YAML at line"),
        ("name: robot\n", "has no `nodes:` list"),
        ("nodes:\n  - path: x.py\n", "node #1 has no `id`"),
        (None, "no such dataflow file"),
    ],
)
def test_bad_dataflow_files_for_rehearsals(
    tmp_path: Path, content: Optional[str], needle: str
) -> None:
    yml = tmp_path / "robot.yml"
    if content is not None:
        yml.write_text(content)
    for command in (["tune-grace", str(yml)], ["check", str(yml), "--grace", "2s"]):
        assert_one_line(run(*command), 2, needle)
    assert not (tmp_path / "out").exists()  # nothing was started


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            "nodes:\n  - id: a\n    pathh: x.py\n",
            "dora rejects it: nodes[0]: unknown field `pathh` at line 3 column 5: fix the file",
        ),
        ("nodes:\n  - id: a\n    path: x.py\n    inputs: 7\n", "dora rejects it: nodes[0]"),
    ],
)
def test_dataflow_files_dora_rejects_are_one_line_before_anything_starts(
    tmp_path: Path, content: str, needle: str
) -> None:
    from dora_doctor.dora.private import locate_dora

    dora = locate_dora()
    if dora is None:
        pytest.skip("dora is not installed: only dora can say which keys its format has")
    yml = tmp_path / "robot.yml"
    yml.write_text(content)
    for command in (["tune-grace", str(yml), "--local"], ["check", str(yml), "--grace", "2s"]):
        assert_one_line(run(*command, "--dora", dora), 2, needle)
    assert not (tmp_path / "out").exists()  # nothing was started


def test_local_rehearsals_run_the_dora_given_with_dora(tmp_path: Path) -> None:
    """--dora names the executable of the private dora too: a program that is not dora is
    blamed as such, and the file is not said to be rejected."""
    yml = tmp_path / "robot.yml"
    yml.write_text("nodes:\n  - id: a\n    path: x.py\n")
    result = run("tune-grace", str(yml), "--local", "--runs", "1", "--dora", "/bin/false")
    assert result.returncode == 1, result.stderr
    assert "dora-doctor: error: dora coordinator exited" in result.stderr
    assert "rejects" not in result.stderr and "Traceback" not in result.stderr
