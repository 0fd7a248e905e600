"""Talking to dora through its own command-line client.

dora-doctor never speaks dora's wire protocol: the CLI is the stable, versioned interface
users already have, it picks up their coordinator address and auth token, and its JSON
output is documented. Differences between dora versions are kept here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from dora_doctor.errors import FAILURE, DoctorError
from dora_doctor.executables import beside_python_or_on_path, quiet_rust_env

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_SERIES = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")  # "0.3.x", "≥0.4": a series, from a log format
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NOT_RUNNING = re.compile(
    r"cannot connect to coordinator|Connection refused|could not connect", re.I
)


def find_dora(explicit: Optional[str] = None) -> str:
    """The dora executable: ``--dora`` if given, else next to this Python, else PATH."""
    if explicit:
        if shutil.which(explicit) is None and not Path(explicit).is_file():
            raise DoctorError(f"--dora {explicit}: no such executable")
        return shutil.which(explicit) or explicit
    found = beside_python_or_on_path("dora")
    if found:
        return found
    raise DoctorError(
        "the dora command was not found on PATH: install it (`pip install dora-rs-cli`) "
        "or name it with --dora PATH"
    )


def parse_version(text: str) -> Optional[str]:
    match = _VERSION.search(text)
    return match.group(0) if match else None


def version_tuple(version: Optional[str]) -> Optional[tuple[int, int, int]]:
    if not version:
        return None
    match = _VERSION.search(version) or _SERIES.search(version)
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def parse_json_lines(text: str) -> List[Dict[str, object]]:
    """dora ≥ 0.4 prints one JSON object per line; anything else on stdout is ignored."""
    rows: List[Dict[str, object]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            rows.append(value)
    return rows


@dataclass
class DoraCli:
    """The user's dora CLI, pointed at one coordinator."""

    executable: str
    coordinator_addr: Optional[str] = None
    coordinator_port: Optional[int] = None
    timeout_s: float = 20.0
    base_env: Optional[Dict[str, str]] = None  # default: this process's environment

    def env(self) -> Dict[str, str]:
        env = quiet_rust_env(self.base_env)
        if self.coordinator_addr:
            env["DORA_COORDINATOR_ADDR"] = self.coordinator_addr
        if self.coordinator_port:
            env["DORA_COORDINATOR_PORT"] = str(self.coordinator_port)
        return env

    def run(
        self, args: Sequence[str], timeout: Optional[float] = None
    ) -> "subprocess.CompletedProcess[str]":
        try:
            return subprocess.run(
                [self.executable, *args],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout or self.timeout_s,
                check=False,
            )
        except FileNotFoundError as err:
            raise DoctorError(f"cannot run {self.executable}: {err.strerror}") from err
        except subprocess.TimeoutExpired as err:
            raise DoctorError(
                f"`dora {' '.join(args)}` did not answer within {err.timeout:.0f} s", FAILURE
            ) from err

    def version(self) -> Optional[str]:
        result = self.run(["--version"])
        return parse_version(result.stdout + result.stderr)

    def port(self) -> Optional[int]:
        """The coordinator port this CLI talks to, when it is set anywhere."""
        value = self.coordinator_port or os.environ.get("DORA_COORDINATOR_PORT")
        try:
            return int(value) if value else None
        except ValueError:
            return None

    def where(self) -> str:
        addr = self.coordinator_addr or os.environ.get("DORA_COORDINATOR_ADDR", "127.0.0.1")
        port = self.coordinator_port or os.environ.get("DORA_COORDINATOR_PORT", "default port")
        return f"{addr}:{port}"

    def _json_command(self, args: Sequence[str]) -> List[Dict[str, object]]:
        result = self.run(args)
        if result.returncode != 0:
            message = _first_error_line(result.stderr + result.stdout)
            if _NOT_RUNNING.search(result.stderr + result.stdout):
                raise DoctorError(
                    f"no dora coordinator answers at {self.where()}: start one with `dora up`, "
                    "or point dora-doctor at yours with --coordinator-addr/--coordinator-port",
                    FAILURE,
                )
            raise DoctorError(f"`dora {' '.join(args)}` failed: {message}", FAILURE)
        return parse_json_lines(result.stdout)

    def list_dataflows(self) -> List[Dict[str, object]]:
        return self._json_command(["list", "--format", "json"])

    def list_nodes(self) -> List[Dict[str, object]]:
        return self._json_command(["node", "list", "--format", "json"])

    def start(self, yml: Path, name: str) -> str:
        """``dora start YML --name NAME --detach``; the new dataflow's UUID."""
        result = self.run(["start", str(yml.resolve()), "--name", name, "--detach"], timeout=120)
        match = _UUID.search(result.stdout + result.stderr)
        if result.returncode != 0 or not match:
            reason = _first_error_line(result.stderr or result.stdout)
            raise DoctorError(f"`dora start {yml}` failed: {reason}", FAILURE)
        return match.group(0)

    def stop(
        self, dataflow: str, grace: Optional[str] = None
    ) -> "subprocess.CompletedProcess[str]":
        args = ["stop", dataflow]
        if grace:
            args += ["--grace-duration", grace]
        return self.run(args, timeout=600)


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("[ERROR]") and not line.startswith("Location"):
            return line
    return "no output"


def default_grace_s(version: Optional[str]) -> Optional[float]:
    """dora's grace period when ``dora stop`` is given none (field notes: 0.3.5 → 2 s,
    0.3.6–0.3.13 → 15 s, 0.4 and later → 10 s)."""
    parts = version_tuple(version)
    if parts is None:
        return None
    if parts < (0, 3, 6):
        return 2.0
    if parts < (0, 4, 0):
        return 15.0
    return 10.0


def sigkill_factor(version: Optional[str]) -> float:
    """When dora sends SIGKILL, in multiples of the grace period.

    dora 0.3.x kills at the grace deadline; 0.4 and later send SIGTERM there and SIGKILL at
    1.5 × grace. An unknown version is taken as current.
    """
    parts = version_tuple(version)
    return 1.0 if parts is not None and parts < (0, 4, 0) else 1.5


def has_sigterm_step(version: Optional[str]) -> bool:
    return sigkill_factor(version) > 1.0
