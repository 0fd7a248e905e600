"""Bad input and missing pieces: one line on stderr, exit 2 for usage, 1 for failures.

Most run in this process through the real entry point (``cli.main``, via typer's CliRunner,
width and colour pinned); those that need a process of their own (the installed entry point,
dora itself) run it as a user would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Union

import pytest
from helpers import CliResult, invoke_doctor, run_doctor

HERE = Path(__file__).parent
COMMANDS = {"inspect", "report", "postmortem", "merge", "tune-grace", "check"}

Result = Union[CliResult, "subprocess.CompletedProcess[str]"]


def run(*args: str) -> CliResult:
    return invoke_doctor(*args)


def assert_one_line(result: Result, code: int, *needles: str, hint: bool = False) -> str:
    """Exactly one error line (and, for usage errors, the hint line); returns the line."""
    exit_code = result.exit_code if isinstance(result, CliResult) else result.returncode
    assert exit_code == code, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in result.stderr
    assert lines and lines[0].startswith("dora-doctor: "), result.stderr
    if hint and len(lines) == 2:
        assert lines[1].startswith("see dora-doctor") and lines[1].endswith(" --help"), lines
    else:
        assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


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
    result = run_doctor("inspect", "--coordinator-port", str(free_port()), timeout=120)
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


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["inspect", "--frobnicate"], "No such option: --frobnicate"),
        (["report"], "Missing argument"),
        (["check", "robot.yml"], "Missing option '--grace'"),
        (["inspect", "--duration"], "'--duration' requires an argument"),
        (["inspect", "-d"], "'-d' requires an argument"),
        (["tune-grace", "robot.yml", "--runs", "many"], "'--runs'"),
        (["tune-grace", "robot.yml", "--runs", "0"], "not in the range 1<=x<=100"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["--frobnicate"], "No such option: --frobnicate"),
    ],
)
def test_usage_errors_are_one_line_and_a_hint(args: "list[str]", needle: str) -> None:
    """Not click's four-line block: the README promises one line."""
    result = run(*args)
    line = assert_one_line(result, 2, needle, hint=True)
    assert line.startswith("dora-doctor: error: ")
    assert result.stdout == ""
    command = args[0] + " " if args[0] in COMMANDS else ""
    assert result.stderr.splitlines()[1] == f"see dora-doctor {command}--help"


def test_usage_error_from_the_installed_entry_point() -> None:
    """The same through ``python -m dora_doctor``, as a user runs it."""
    result = run_doctor("inspect", "--frobnicate", timeout=60)
    assert_one_line(result, 2, "No such option: --frobnicate", hint=True)


def test_what_the_user_typed_is_not_obeyed_by_the_terminal() -> None:
    line = assert_one_line(run("inspect", "--fr\x1b]0;pwned\x07"), 2, hint=True)
    assert "\x1b" not in line and "\\x1b" in line


@pytest.mark.parametrize(
    "value", ["", " ", "\u0663s", "\uff13s", "9" * 400, "nan", "inf", "-1s", "1e400"]
)
def test_bad_durations_on_the_command_line(value: str) -> None:
    """Never taken as "no limit" or as infinity: one line, exit 2, before anything runs."""
    assert_one_line(run("inspect", "--duration", value), 2, "--duration")
    assert_one_line(run("check", "x.yml", "--grace", value), 2, "--grace")
    assert_one_line(run("tune-grace", "x.yml", "--warmup", value), 2, "--warmup")


def test_help_lists_commands_with_examples() -> None:
    result = run("--help")
    assert result.exit_code == 0 and result.stderr == ""
    assert "inspect" in result.stdout and "report" in result.stdout
    sub = run("inspect", "--help")
    assert sub.exit_code == 0
    assert "Examples:" in sub.stdout and "dora-doctor inspect robot" in sub.stdout


def test_no_arguments_shows_the_help() -> None:
    result = run()
    assert result.exit_code == 2
    assert result.stdout.startswith("Usage: dora-doctor [OPTIONS] COMMAND")
    assert "tune-grace" in result.stdout


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


# The 545-byte "billion laughs": 9 levels of 9 aliases, 9**9 strings once expanded.
ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{name}: &{name} [{','.join(['*' + prev] * 9)}]\n"
        for prev, name in zip("abcdefgh", "bcdefghi")
    )
    + "nodes:\n  - id: *i\n    path: *i\n    env: {A: *i}\n"
)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (ALIAS_BOMB, "aliases expand to more than 100,000 values"),
        (
            "base: &b {path: x.py}\nnodes:\n"
            + "".join(f"  - {{id: n{i}, <<: *b}}\n" for i in range(101)),
            "more than 100 aliases",
        ),
        ("nodes:\n  - id: a\n    path: x.py\n#" + "x" * (1024 * 1024), "larger than any dataflow"),
        ("nodes:\n  - id: [a, b]\n    path: x.py\n", "`id` is not a name"),
        ("nodes: " + "[" * 5000 + "]" * 5000 + "\n", "is not valid YAML"),
    ],
    ids=["alias-bomb", "many-aliases", "over-1MiB", "id-not-a-name", "deep-nesting"],
)
def test_hostile_dataflow_files_are_refused_at_once(
    tmp_path: Path, content: str, needle: str
) -> None:
    """Before the document is built: a bomb once took 38 s and 2 GB, then MemoryError."""
    yml = tmp_path / "robot.yml"
    yml.write_text(content)
    if content == ALIAS_BOMB:
        assert len(content.encode()) <= 545
    for command in (["tune-grace", str(yml)], ["check", str(yml), "--grace", "2s"]):
        began = time.monotonic()
        assert_one_line(run(*command), 2, needle)
        assert time.monotonic() - began < 0.5
    assert not (tmp_path / "out").exists()


def test_a_fifo_named_as_the_dataflow_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "robot.yml"
    os.mkfifo(fifo)
    assert_one_line(run("check", str(fifo), "--grace", "2s"), 2, "not a regular file")


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    from dora_doctor.dora import descriptor

    yml = tmp_path / "robot.yml"
    yml.write_text(
        "x-env: &env {LOG: debug}\nnodes:\n"
        "  - {id: a, path: a.py, env: *env}\n  - {id: b, path: b.py, env: *env}\n"
    )
    assert descriptor.node_ids(yml) == ["a", "b"]


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
    assert result.exit_code == 1, result.stderr
    assert "dora-doctor: error: dora coordinator exited" in result.stderr
    assert "rejects" not in result.stderr and "Traceback" not in result.stderr
