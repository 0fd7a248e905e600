"""Talking to dora through its own command-line client.

dora-doctor never speaks dora's wire protocol: the CLI is the stable, versioned interface
users already have, it picks up their coordinator address and auth token, and its JSON
output is documented. Differences between dora versions are kept here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from dora_doctor.dora.versions import (
    _UUID,
    ReleaseLine,
    check_supported,
    default_control_port,
    is_legacy,
    parse_version,
    release_line,
    stop_args,
)
from dora_doctor.errors import FAILURE, DoctorError
from dora_doctor.executables import beside_python_or_on_path, quiet_rust_env

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
    known_version: Optional[str] = None  # from `dora --version`, asked once (see version())
    validated: Dict[str, Optional[str]] = field(default_factory=dict)  # file → validate()

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
        """``dora --version``, asked once per client; a release older than 0.3.7 is refused
        here, so every command that talks to dora stops with the same one line."""
        if self.known_version is None:
            result = self.run(["--version"])
            self.known_version = parse_version(result.stdout + result.stderr) or ""
        check_supported(self.known_version or None)
        return self.known_version or None

    def legacy(self) -> bool:
        return is_legacy(self.version())

    def line(self) -> ReleaseLine:
        """The facts of this CLI's release line (:mod:`dora_doctor.dora.versions`)."""
        return release_line(self.version())

    def connection_args(self) -> List[str]:
        """Before 1.0 the CLI reads no DORA_COORDINATOR_* variables: the address goes on its
        command line."""
        if self.line().cli_reads_env:
            return []
        args: List[str] = []
        addr = self.coordinator_addr or os.environ.get("DORA_COORDINATOR_ADDR")
        if addr:
            args += ["--coordinator-addr", addr]
        port = self.port()
        if port:
            args += ["--coordinator-port", str(port)]
        return args

    def port(self) -> Optional[int]:
        """The coordinator port this CLI talks to, when it is set anywhere."""
        value = self.coordinator_port or os.environ.get("DORA_COORDINATOR_PORT")
        try:
            return int(value) if value else None
        except ValueError:
            return None

    def control_port(self) -> int:
        """The port this CLI talks to, dora's default for its version when none is set."""
        return self.port() or default_control_port(self.version())

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
        if not self.line().has_list_json:
            result = self._checked(["list", *self.connection_args()])
            return parse_legacy_list(result.stdout)
        return self._json_command(["list", "--format", "json", *self.connection_args()])

    def list_nodes(self) -> List[Dict[str, object]]:
        """``dora node list`` rows; none on 0.3.x, which has no such command (discovery then
        finds the nodes by DORA_NODE_CONFIG in their environment)."""
        if not self.line().has_node_list:
            return []
        return self._json_command(["node", "list", "--format", "json", *self.connection_args()])

    def _checked(self, args: Sequence[str]) -> "subprocess.CompletedProcess[str]":
        result = self.run(args)
        if result.returncode != 0:
            if _NOT_RUNNING.search(result.stderr + result.stdout):
                raise DoctorError(
                    f"no dora coordinator answers at {self.where()}: start one with `dora up`, "
                    "or point dora-doctor at yours with --coordinator-addr/--coordinator-port",
                    FAILURE,
                )
            message = _first_error_line(result.stderr + result.stdout)
            raise DoctorError(f"`dora {' '.join(args)}` failed: {message}", FAILURE)
        return result

    def start(self, yml: Path, name: str) -> str:
        """``dora start YML --name NAME --detach``; the new dataflow's UUID."""
        result = self.run(
            ["start", str(yml.resolve()), "--name", name, "--detach", *self.connection_args()],
            timeout=120,
        )
        match = _UUID.search(result.stdout + result.stderr)
        if result.returncode != 0 or not match:
            reason = _first_error_line(result.stderr or result.stdout)
            raise DoctorError(f"`dora start {yml}` failed: {reason}", FAILURE)
        return match.group(0)

    def validate(self, yml: Path) -> Optional[str]:
        """Why dora rejects a dataflow file (``dora validate``, dora ≥ 0.4), or None.

        dora-doctor reads only node ids; dora knows every key of its own format (a typo like
        ``pathh:`` is an unknown field), and saying so before a rehearsal starts anything
        beats a failed ``dora start`` in the middle of one.
        """
        if not self.line().has_validate:
            return None  # no validate command before 1.0; `dora start` will say it
        key = str(yml.resolve())
        if key not in self.validated:  # the CLI checks before announcing, rehearse() again
            result = self.run(["validate", str(yml)])
            text = result.stderr + result.stdout
            # silence or "no such command" is about the program, not the file: `dora start`
            # will say what is wrong with it
            failed = (
                result.returncode != 0 and text.strip() and "unrecognized subcommand" not in text
            )
            self.validated[key] = _cause(text) if failed else None
        return self.validated[key]

    def stop(
        self, dataflow: str, grace: Optional[str] = None
    ) -> "subprocess.CompletedProcess[str]":
        args = [*stop_args(self.version(), dataflow), *self.connection_args()]
        if grace:
            args += ["--grace-duration", grace]
        return self.run(args, timeout=600)


_CAUSE = re.compile(r"^\s*\d+: (?P<cause>.+)$", re.M)


def _cause(text: str) -> str:
    """The innermost cause of a Rust error report, without the list of every valid key."""
    causes = [m["cause"] for m in _CAUSE.finditer(text.split("Location:")[0])]
    if not causes:
        return _first_error_line(text)
    cause = causes[-1]
    expected = cause.find(", expected one of")
    at = cause.rfind(" at line ")
    return cause[:expected] + (cause[at:] if at > expected else "") if expected >= 0 else cause


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("[ERROR]") and not line.startswith("Location"):
            return line
    return "no output"


_LEGACY_ROW = re.compile(rf"^\s*(?P<uuid>{_UUID.pattern})\s*(?P<rest>.*)$")


def parse_legacy_list(text: str) -> List[Dict[str, object]]:
    """0.3.x ``dora list`` (a text table: ``UUID  Name  Status``) as 1.x-style rows."""
    rows: List[Dict[str, object]] = []
    for line in text.splitlines():
        found = _LEGACY_ROW.match(line)
        if not found:
            continue
        words = found["rest"].split()
        status = words[-1] if words and words[-1].lower() in _LEGACY_STATES else None
        name_words = words[:-1] if status else words
        rows.append(
            {
                "uuid": found["uuid"],
                "name": " ".join(name_words) or None,
                "status": status,
            }
        )
    return rows


_LEGACY_STATES = {"running", "finished", "failed", "stopping", "starting"}
