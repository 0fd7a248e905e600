"""Small helpers the test modules share: run the CLI as a user would, wait for a condition."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional, TypeVar

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
