"""What differs between dora releases, in one place: ports, stop syntax, the signal ladder,
the teardown command and the daemon's arguments. Pure functions of a version string, so that
analysis and reports can ask them without running dora.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import List, Optional, Tuple

from dora_doctor.errors import USAGE, DoctorError

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


_SERIES = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")  # "0.3.x", "≥0.4": a series, from a log format


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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


MIN_SUPPORTED = (0, 3, 7)


def check_supported(version: Optional[str]) -> None:
    """Refuse, in one line, a dora older than 0.3.7: its CLI and logs were never checked and
    its default grace differs (2 s); an unknown version is taken as current."""
    parts = version_tuple(version)
    if parts is not None and parts < MIN_SUPPORTED:
        raise DoctorError(
            f"dora {version} is not supported: dora-doctor needs dora-rs-cli 0.3.7 or later "
            "(tested with 0.3.13 and 1.1.0)",
            USAGE,
        )


def is_legacy(version: Optional[str]) -> bool:
    """0.3.x: control port 6012, text output, ``destroy``, SIGKILL at the grace, text logs."""
    parts = version_tuple(version)
    return parts is not None and parts < (0, 4, 0)


def default_control_port(version: Optional[str]) -> int:
    """The port the CLI talks to when none is given (0.3.x control port / ≥ 0.4 WebSocket)."""
    return 6012 if is_legacy(version) else 6013


def coordinator_args(
    version: Optional[str], port: int, control_port: int, store: Optional[Path] = None
) -> List[str]:
    """``dora coordinator`` on loopback only. 0.3.x listens for daemons (``--port``) and for
    the CLI (``--control-port``) apart and keeps no store; ≥ 0.4 has one port for both."""
    if is_legacy(version):
        return [
            "--interface",
            "127.0.0.1",
            "--port",
            str(port),
            "--control-interface",
            "127.0.0.1",
            "--control-port",
            str(control_port),
            "--quiet",
        ]
    args = ["--interface", "127.0.0.1", "--port", str(control_port)]
    if store is not None:
        args += ["--store", f"redb:{store}"]
    return [*args, "--quiet"]


def daemon_args(version: Optional[str], coordinator_port: int, listen_port: int) -> List[str]:
    """``dora daemon`` without zenoh multicast scouting. 0.3.x has no ``--zenoh-no-multicast``:
    there it takes :data:`ZENOH_LOOPBACK` through the ``ZENOH_CONFIG`` variable instead."""
    args = [
        "--coordinator-addr",
        "127.0.0.1",
        "--coordinator-port",
        str(coordinator_port),
        "--local-listen-port",
        str(listen_port),
    ]
    if not is_legacy(version):
        args.append("--zenoh-no-multicast")
    return [*args, "--quiet"]


ZENOH_LOOPBACK = (
    '{ mode: "peer", listen: { endpoints: ["tcp/127.0.0.1:0"] },'
    " scouting: { multicast: { enabled: false }, gossip: { enabled: false } } }\n"
)


def teardown_commands(version: Optional[str]) -> List[Tuple[str, ...]]:
    """Stop every dataflow and end coordinator + daemon. 1.1.0's ``down`` refuses while a
    dataflow runs, hence ``stop --all`` first; 0.3.x's ``destroy`` stops them itself."""
    if is_legacy(version):
        return [("destroy",)]
    return [("stop", "--all", "--grace-duration", "1s"), ("down", "--force")]


def stop_command(version: Optional[str], dataflow: str, grace: str) -> str:
    """The ``dora stop`` a user should type: 0.3.x takes a name only through ``--name``.
    The name comes from the target and the line gets pasted into a shell: it is quoted."""
    if is_legacy(version) and not _UUID.fullmatch(dataflow):
        return f"dora stop --name {shlex.quote(dataflow)} --grace-duration {grace}"
    return f"dora stop {shlex.quote(dataflow)} --grace-duration {grace}"
