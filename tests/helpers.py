"""Small helpers the test modules share: run the CLI as a user would, wait for a condition."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TypeVar

import psutil
import pytest

T = TypeVar("T")


def run_doctor(
    *args: str,
    env: Optional[Dict[str, str]] = None,
    timeout: float = 300,
    stdin: Optional[str] = None,
) -> "subprocess.CompletedProcess[str]":
    """``python -m dora_doctor ARGS`` in a subprocess, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "dora_doctor", *args],
        env=dict(os.environ) if env is None else env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class CliResult:
    """What a user sees of one in-process run: exit code, stdout, stderr."""

    exit_code: int
    stdout: str
    stderr: str


# A fixed width and no colour: output does not depend on the terminal the tests run in.
PINNED_ENV = {"COLUMNS": "100", "LINES": "40", "NO_COLOR": "1", "TERM": "dumb"}


def invoke_doctor(*args: str, env: Optional[Dict[str, str]] = None) -> CliResult:
    """``dora-doctor ARGS`` in this process through ``cli.main`` (the real entry point, with
    its error handling), stdio and environment isolated by typer's CliRunner. For every
    test that needs no process of its own: no interpreter start-up per case."""
    from typer.testing import CliRunner

    from dora_doctor import cli

    sigterm = signal.getsignal(signal.SIGTERM)  # main() installs its own handler
    try:
        with CliRunner().isolation(env={**PINNED_ENV, **(env or {})}) as streams:
            code = cli.main(list(args))
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = streams[0].getvalue(), streams[1].getvalue()
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    return CliResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def wait_for(condition: Callable[[], T], timeout: float = 60.0, what: str = "condition") -> T:
    """Poll until ``condition()`` is truthy (a ready handshake, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"{what} not met within {timeout:g} s")


def process_state(pid: int) -> str:
    """The State letter of /proc/PID/status ('T' = stopped, what a paused target shows)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except OSError:
        return "gone"
    return "?"


def start_inspect(
    env: Dict[str, str], name: str, record: Path, *extra: str, segments: int = 1
) -> "subprocess.Popen[str]":
    """``inspect NAME --record RECORD`` in the background, returned once ``segments`` stack
    segments are on disk (the ready handshake); killed if they never come."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dora_doctor", "inspect", name, "--record", str(record), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: record.exists() and record.read_text().count('"type":"stacks"') >= segments,
            30,
            "first samples on disk",
        )
    except BaseException:
        proc.kill()
        raise
    return proc


def pyspy_recorders_of(pids: List[int]) -> List[psutil.Process]:
    """py-spy processes sampling any of ``pids`` (none should outlive a watch)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "py-spy" and any(str(p) in cmdline for p in pids):
            found.append(proc)
    return found


def assert_c_call_holder(node: Dict[str, Any]) -> Dict[str, Any]:
    """The gil_contention sample's holder, as every report must name it; returns it."""
    holder: Dict[str, Any] = node["gil"]["holders"][0]
    assert (holder["thread"], holder["function"], holder["native"]) == (
        "cruncher",
        "crunch_numbers",
        True,
    )
    assert holder["file"].endswith("c_call_holder.py")
    return holder


@functools.lru_cache(maxsize=None)
def recording_line_validator() -> Any:
    """docs/recording.schema.json as a validator, built once: ``jsonschema.validate`` checks
    the schema itself at every call, which made line-by-line checks the suite's slowest."""
    import json

    import jsonschema

    root = Path(__file__).resolve().parent.parent
    schema = json.loads((root / "docs" / "recording.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_recording_lines_valid(text: str) -> None:
    """Every line of a recording validates against docs/recording.schema.json."""
    import json

    validator = recording_line_validator()
    for line in text.splitlines():
        validator.validate(json.loads(line))
