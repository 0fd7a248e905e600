"""What differs between dora releases, in one place: one :class:`ReleaseLine` per release
line on PyPI (0.3.x, 0.4.x, 0.5.x, 1.0.x, 1.1.x), each fact checked on that line's real CLI,
daemon and logs (``tests/test_matrix.py`` runs every line). Every function below reads the
table, so analysis and reports can ask without running dora, and a new release is one row.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from dora_doctor.errors import USAGE, DoctorError

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


_SERIES = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")  # "0.3.x", "≥0.4": a series, from a log format


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class ReleaseLine:
    """The facts of one dora release line, as observed on its PyPI release (tested one named
    in ``tested``). A fact that differs inside a line gets a new row, not an ``if``."""

    series: str  # "0.4.x"
    first: Tuple[int, int, int]  # the first release the row applies to
    tested: str  # the release every fact below was checked on
    control_port: int  # where the CLI finds the coordinator by default
    # 0.3–0.5: the coordinator listens for daemons (--port) and the CLI (--control-port) apart
    split_control_port: bool
    cli_reads_env: bool  # the CLI reads DORA_COORDINATOR_ADDR/PORT (1.x); else flags only
    stop_name_needs_flag: bool  # `dora stop` takes a name only with --name (UUID positional)
    sigterm_step: bool  # SIGTERM at the grace before SIGKILL
    sigkill_factor: float  # SIGKILL at this × grace
    # `dora stop` counts a node its SIGTERM ended as clean (1.x: exit 0, "treating as clean");
    # 0.4/0.5 report it failed: "killed by dora because it didn't react … (SIGTERM)", exit 1
    sigterm_counts_clean: bool
    default_grace_s: float  # grace when `dora stop` is given none
    teardown: Tuple[Tuple[str, ...], ...]  # commands that stop everything and end dora
    json_logs: bool  # coordinator/daemon log files are JSON lines (else tracing text)
    logs_node_exits: bool  # the daemon logs a node's failing exit (Signal/ExitCode)
    # its "X was killed due to not stopping within …" line means X was alive at the kill
    kill_line_trustworthy: bool
    has_node_list: bool  # `dora node list --format json`
    has_list_json: bool  # `dora list --format json` (else a text table)
    has_status: bool  # `dora status --format json` (else `dora check` text)
    has_validate: bool  # `dora validate FILE`
    zenoh_no_multicast_flag: bool  # `dora daemon --zenoh-no-multicast` (else ZENOH_CONFIG)
    # per-node keys of the dataflow YAML that help a slow or silent node (checked with
    # `dora validate` on 1.x, in the descriptor's key list of the CLI's library before)
    startup_timeout: bool
    health_check_timeout: bool
    # Node() starts native threads of dora's in the node's process, none before it (a process
    # that imported dora has one thread): while Node() waits for the dataflow to start, 3 on
    # 0.3.13 (tokio-runtime-w, OpenTelemetry), 13 on 1.0.1 and 1.1.0 (dora-node-runti,
    # tokio-rt-worker, zenoh's); 7-19 once it runs (recordings wb-*.ddrec, corpus/); 14 stay
    # after the node left its loop and dropped its Node (1.1.0). So a process with only
    # Python threads has not called Node() yet. A line where this fails gets False: on 0.4.1
    # and 0.5.0 a node waiting in Node() for a peer has no thread but Python's (one, for a
    # node importing only dora; /proc, 2026-12-02), its threads come once the dataflow runs.
    # Every line connects to the daemon first in Node(): that is read from /proc too
    # (capture/daemonlink.py) and decides wherever a recording has it.
    node_api_threads: bool = True
    # Names (prefixes of /proc's 15-character comm) of threads Node() starts that no process
    # before Node() has, whatever it imported: numpy's and pyarrow's threads are "python" and
    # "jemalloc_bg_thd" (measured with numpy 2, pyarrow of each line's venv). 1.1.0:
    # dora-node-runti and dora-startup-* on a node waiting in Node() and on running ones.
    # 0.4/0.5 start no named thread before the dataflow runs: no name decides there.
    node_thread_names: Tuple[str, ...] = ()


_DESTROY: Tuple[Tuple[str, ...], ...] = (("destroy",),)
# 1.x `down` refuses while a dataflow runs (1.1.0), hence `stop --all` first
_DOWN: Tuple[Tuple[str, ...], ...] = (
    ("stop", "--all", "--grace-duration", "1s"),
    ("down", "--force"),
)

RELEASE_LINES: Tuple[ReleaseLine, ...] = (
    ReleaseLine(
        series="0.3.x",
        first=(0, 3, 0),
        tested="0.3.13",
        control_port=6012,
        split_control_port=True,
        cli_reads_env=False,
        stop_name_needs_flag=True,
        sigterm_step=False,  # SIGKILL at the grace itself
        sigkill_factor=1.0,
        sigterm_counts_clean=False,
        default_grace_s=15.0,  # 0.3.6–0.3.13 (0.3.5: 2 s, and unsupported)
        teardown=_DESTROY,
        json_logs=False,
        logs_node_exits=True,
        kill_line_trustworthy=True,
        has_node_list=False,
        has_list_json=False,
        has_status=False,
        has_validate=False,
        zenoh_no_multicast_flag=False,
        startup_timeout=False,
        health_check_timeout=False,
        node_thread_names=("tokio-runtime-w",),
    ),
    ReleaseLine(
        series="0.4.x",
        first=(0, 4, 0),
        tested="0.4.1",
        control_port=6012,
        split_control_port=True,
        cli_reads_env=False,
        stop_name_needs_flag=True,
        sigterm_step=True,
        sigkill_factor=1.5,
        sigterm_counts_clean=False,
        default_grace_s=10.0,
        teardown=_DESTROY,
        json_logs=True,
        logs_node_exits=False,  # not even for a SIGTERM at the grace
        kill_line_trustworthy=True,
        has_node_list=True,
        has_list_json=True,
        has_status=False,
        has_validate=False,
        zenoh_no_multicast_flag=False,
        startup_timeout=False,
        health_check_timeout=False,
        node_api_threads=False,  # none while Node() waits for peers
    ),
    ReleaseLine(
        series="0.5.x",
        first=(0, 5, 0),
        tested="0.5.0",
        control_port=6012,
        split_control_port=True,
        cli_reads_env=False,
        stop_name_needs_flag=True,
        sigterm_step=True,
        sigkill_factor=1.5,
        sigterm_counts_clean=False,
        default_grace_s=10.0,
        teardown=_DESTROY,
        json_logs=True,
        logs_node_exits=True,
        kill_line_trustworthy=False,  # logged for every node, also ones long gone
        has_node_list=True,
        has_list_json=True,
        has_status=False,
        has_validate=False,
        zenoh_no_multicast_flag=False,
        startup_timeout=False,
        health_check_timeout=False,
        node_api_threads=False,  # none while Node() waits for peers
    ),
    ReleaseLine(
        series="1.0.x",
        first=(1, 0, 0),
        tested="1.0.1",
        control_port=6013,
        split_control_port=False,
        cli_reads_env=True,
        stop_name_needs_flag=False,
        sigterm_step=True,
        sigkill_factor=1.5,
        sigterm_counts_clean=True,
        default_grace_s=10.0,
        teardown=_DOWN,
        json_logs=True,
        logs_node_exits=True,
        kill_line_trustworthy=True,
        has_node_list=True,
        has_list_json=True,
        has_status=True,
        has_validate=True,
        zenoh_no_multicast_flag=True,
        startup_timeout=False,
        health_check_timeout=True,
        node_thread_names=("dora-node-runti", "dora-startup-"),
    ),
    ReleaseLine(
        series="1.1.x",
        first=(1, 1, 0),
        tested="1.1.0",
        control_port=6013,
        split_control_port=False,
        cli_reads_env=True,
        stop_name_needs_flag=False,
        sigterm_step=True,
        sigkill_factor=1.5,
        sigterm_counts_clean=True,
        default_grace_s=10.0,
        teardown=_DOWN,
        json_logs=True,
        logs_node_exits=True,
        kill_line_trustworthy=True,
        has_node_list=True,
        has_list_json=True,
        has_status=True,
        has_validate=True,
        zenoh_no_multicast_flag=True,
        startup_timeout=True,
        health_check_timeout=True,
        node_thread_names=("dora-node-runti", "dora-startup-"),
    ),
)
CURRENT = RELEASE_LINES[-1]  # an unknown version is taken as the newest line


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


def release_line(version: Optional[str]) -> ReleaseLine:
    """The row for ``version`` ("0.4.1", "0.4.x", "dora-cli 1.0.1"); the newest when unknown.

    "≥0.4" (all postmortem can tell from a JSON log alone) gives the 0.4.x row: of the JSON
    lines it is the one whose silence means least, so no claim rests on a line it lacks.
    """
    parts = version_tuple(version)
    if parts is None:
        return CURRENT
    found = RELEASE_LINES[0]
    for line in RELEASE_LINES:
        if parts >= line.first:
            found = line
    return found


# What tells the release line from a JSON log file's first lines, when no `dora --version` is
# at hand (postmortem): (label for release_line(), pattern, a real line's message/target).
LOG_MARKS: Tuple[Tuple[str, "re.Pattern[str]", str], ...] = (
    # 0.5.0 logs its tarpc control plane at INFO, from its first line on
    (
        "0.5.x",
        re.compile(r'"target":"tarpc::'),
        '"message":"ReceiveRequest"},"target":"tarpc::server"',
    ),
    # 1.0.1 and 1.1.0: daemons reach the coordinator over WebSocket
    (
        "≥1.0",
        re.compile(r"Connected to dora-coordinator at ws://|WS server listening on port"),
        "Connected to dora-coordinator at ws://127.0.0.1:39529/api/daemon",
    ),
    # 0.4.1: over plain TCP, and no tarpc
    (
        "0.4.x",
        re.compile(r"Connected to dora-coordinator at \d"),
        "Connected to dora-coordinator at 127.0.0.1:40015",
    ),
)


def line_from_log(head: str) -> Optional[str]:
    """The release line whose marks the first lines of a JSON log carry, else None."""
    for label, pattern, _example in LOG_MARKS:
        if pattern.search(head):
            return label
    return None


def default_grace_s(version: Optional[str]) -> Optional[float]:
    """dora's grace period when ``dora stop`` is given none (0.3.5 → 2 s, 0.3.6–0.3.13 →
    15 s, 0.4 and later → 10 s)."""
    parts = version_tuple(version)
    if parts is None:
        return None
    if parts < (0, 3, 6):
        return 2.0
    return release_line(version).default_grace_s


def sigkill_factor(version: Optional[str]) -> float:
    """When dora sends SIGKILL, in multiples of the grace period (0.3.x at the grace, later
    lines SIGTERM there and SIGKILL at 1.5 × grace). An unknown version is taken as current."""
    return release_line(version).sigkill_factor


def has_sigterm_step(version: Optional[str]) -> bool:
    return release_line(version).sigterm_step


def sigterm_counts_clean(version: Optional[str]) -> bool:
    return release_line(version).sigterm_counts_clean


def logs_node_exits(version: Optional[str]) -> bool:
    """Whether the daemon's silence about a node's end may count (0.4.x logs no exit)."""
    return release_line(version).logs_node_exits


def kill_line_trustworthy(version: Optional[str]) -> bool:
    """Whether "X was killed due to not stopping" proves X was alive at the kill (not 0.5.x)."""
    return release_line(version).kill_line_trustworthy


def has_startup_timeout(version: Optional[str]) -> bool:
    """Whether ``startup_timeout:`` exists (1.1.x; 1.0.1's ``dora validate`` rejects it)."""
    return release_line(version).startup_timeout


def has_health_check_timeout(version: Optional[str]) -> bool:
    """Whether ``health_check_timeout:`` exists (1.0.x and later)."""
    return release_line(version).health_check_timeout


def node_api_starts_threads(version: Optional[str]) -> bool:
    """Whether ``Node()`` starts native threads of dora's in the node process: what lets a
    process with only Python threads be called "not connected yet" (every tested line)."""
    return release_line(version).node_api_threads


def node_thread_names(version: Optional[str]) -> Tuple[str, ...]:
    """Name prefixes of the threads only Node() starts (empty: names cannot tell, 0.4/0.5)."""
    return release_line(version).node_thread_names


MIN_SUPPORTED = (0, 3, 7)


def check_supported(version: Optional[str]) -> None:
    """Refuse, in one line, a dora older than 0.3.7: its CLI and logs were never checked and
    its default grace differs (2 s); an unknown version is taken as current."""
    parts = version_tuple(version)
    if parts is not None and parts < MIN_SUPPORTED:
        tested = ", ".join(line.tested for line in RELEASE_LINES)
        raise DoctorError(
            f"dora {version} is not supported: dora-doctor needs dora-rs-cli 0.3.7 or later "
            f"(tested with {tested})",
            USAGE,
        )


def is_legacy(version: Optional[str]) -> bool:
    """0.3.x: text logs, no ``node list``, SIGKILL at the grace."""
    return not release_line(version).json_logs


def default_control_port(version: Optional[str]) -> int:
    """The port the CLI talks to when none is given (6012 up to 0.5.x, 6013 from 1.0)."""
    return release_line(version).control_port


def coordinator_args(
    version: Optional[str], port: int, control_port: int, store: Optional[Path] = None
) -> List[str]:
    """``dora coordinator`` on loopback only. Up to 0.5.x it listens for daemons (``--port``)
    and for the CLI (``--control-port``) apart and keeps no store; 1.x has one port for both."""
    if release_line(version).split_control_port:
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
    """``dora daemon`` without zenoh multicast scouting. Before 1.0 there is no
    ``--zenoh-no-multicast``: it takes :data:`ZENOH_LOOPBACK` through ``ZENOH_CONFIG`` instead."""
    args = [
        "--coordinator-addr",
        "127.0.0.1",
        "--coordinator-port",
        str(coordinator_port),
        "--local-listen-port",
        str(listen_port),
    ]
    if release_line(version).zenoh_no_multicast_flag:
        args.append("--zenoh-no-multicast")
    return [*args, "--quiet"]


ZENOH_LOOPBACK = (
    '{ mode: "peer", listen: { endpoints: ["tcp/127.0.0.1:0"] },'
    " scouting: { multicast: { enabled: false }, gossip: { enabled: false } } }\n"
)


def teardown_commands(version: Optional[str]) -> List[Tuple[str, ...]]:
    """Stop every dataflow and end coordinator + daemon (``destroy`` before 1.0, ``down``)."""
    return list(release_line(version).teardown)


def stop_args(version: Optional[str], dataflow: str) -> List[str]:
    """``stop`` and how it names ``dataflow``: up to 0.5.x a name only through ``--name``."""
    if release_line(version).stop_name_needs_flag and not _UUID.fullmatch(dataflow):
        return ["stop", "--name", dataflow]
    return ["stop", dataflow]


def stop_command(version: Optional[str], dataflow: str, grace: str) -> str:
    """The ``dora stop`` a user should type, in this version's syntax. The name comes from the
    target and the line gets pasted into a shell: every word is quoted."""
    words = [shlex.quote(word) for word in stop_args(version, dataflow)]
    return " ".join(["dora", *words, "--grace-duration", grace])
