"""The real-world corpus (samples/README.md, "The corpus"): one table of scenarios, and one way
to stop a scenario for real while watching its processes ourselves.

Why a watcher of our own: the point of the corpus is to compare dora-doctor's answer with what
really happened, so what happened must not come from dora-doctor. ``observe`` polls the node
PIDs with psutil every 10 ms (the daemon, not we, is their parent, so no waitpid), takes the
moment of the stop from the creation time of the ``dora stop`` process that ``inspect --stop``
runs, reads each node's caught signals from ``/proc/PID/status`` before the stop, and keeps
dora's own lines about each node from the daemon log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import psutil

from dora_doctor.dora.private import LocalDora

GRACE = "2s"
STOP_AFTER = "2s"
SIGTERM_BIT = 1 << (15 - 1)


@dataclass(frozen=True)
class Scenario:
    """One corpus dataflow: its YAML under samples/, the nodes to wait for before the stop
    (``registered`` = those that reach ``Node()``; a node that never does shows no PID in
    ``dora node list``), and which dora / node Python it runs on."""

    name: str
    yml: str
    nodes: Tuple[str, ...]
    cell: str = "default"  # default (dora 1.1.0, this Python) | py312 | py313 | py310
    settle_s: float = 0.0  # extra wait after the nodes are up (a worker's call under way)


SCENARIOS: Dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("re_backtrack", "re_backtrack.yml", ("validate",)),
        Scenario("json_export", "json_export.yml", ("exporter",)),
        Scenario("pickle_checkpoint", "pickle_checkpoint.yml", ("checkpoint",), settle_s=3.0),
        Scenario("zlib_archiver", "zlib_archiver.yml", ("archiver",)),
        Scenario("numpy_object", "numpy_object.yml", ("solver",)),
        Scenario("pyarrow_convert", "pyarrow_convert.yml", ("converter",)),
        Scenario("threadpool", "threadpool.yml", ("scorer",)),
        Scenario("queue_listener", "queue_listener.yml", ("logger",)),
        Scenario("non_daemon", "non_daemon.yml", ("uploader",)),
        Scenario("slow_startup", "slow_startup.yml", ("model",)),
        Scenario("slow_startup_numpy", "slow_startup_numpy.yml", ("loader",)),
        Scenario("victim", "victim.yml", ("waiter", "never_ready")),
        Scenario("asyncio_ok", "asyncio_ok.yml", ("aio",)),
        Scenario("asyncio_blocked", "asyncio_blocked.yml", ("aio_blocked",)),
        Scenario("operator_ok", "operator_ok.yml", ("counter", "talker")),
        Scenario("operator_hog", "operator_hog.yml", ("indexer",)),
        Scenario("process_pool", "process_pool.yml", ("pool",)),
        Scenario("sigterm_quick", "sigterm_quick.yml", ("quick",)),
        Scenario("sigterm_slow", "sigterm_slow.yml", ("flusher",)),
        Scenario("py312", "py312.yml", ("exporter", "talker"), cell="py312"),
        Scenario("py313", "py313.yml", ("validate", "aio"), cell="py313"),
        Scenario("py310", "py310.yml", ("uploader", "talker"), cell="py310"),
    ]
}


@dataclass
class ProcessFate:
    """What we saw of one process: when it went, counted from the stop request."""

    pid: int
    catches_sigterm: Optional[bool]
    gone_after_stop_s: Optional[float] = None
    children: List[int] = field(default_factory=list)
    children_gone_after_stop_s: Dict[int, Optional[float]] = field(default_factory=dict)


@dataclass
class Run:
    scenario: Scenario
    report: Dict[str, Any]
    nodes: Dict[str, Dict[str, Any]]
    fates: Dict[str, ProcessFate]
    dora_lines: Dict[str, List[str]]
    doctor_exit: int
    doctor_stderr: str
    stop_at: Optional[float]


def catches_sigterm(pid: int) -> Optional[bool]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & SIGTERM_BIT)
    except (OSError, ValueError):
        return None
    return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def spawned_pids(
    local: LocalDora, name: str, uuid: str, ids: Tuple[str, ...], timeout: float = 30
) -> Dict[str, int]:
    """Node id → PID, also for nodes that have not registered: ``DORA_NODE_CONFIG`` in the
    environment of the daemon's children names the node (a node still in its start-up has a
    process but may have no PID in ``dora node list``)."""
    deadline = time.monotonic() + timeout
    found: Dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            found.update(local.node_pids(name))
        except Exception:  # noqa: BLE001 - dora may not answer while it starts nodes
            pass
        daemon = local.daemon_pid
        if daemon is not None:
            for child in psutil.Process(daemon).children(recursive=True):
                try:
                    env = child.environ()
                except psutil.Error:
                    continue
                config = env.get("DORA_NODE_CONFIG", "")
                for node in ids:
                    if (
                        node not in found
                        and f"dataflow_id: {uuid}" in config
                        and f"node_id: {node}\n" in config + "\n"
                    ):
                        found[node] = child.pid
        if all(node in found for node in ids):
            return found
        time.sleep(0.1)
    raise AssertionError(
        f"{name}: nodes {sorted(set(ids) - set(found))} not spawned in {timeout} s"
    )


def _log_sizes(local: LocalDora) -> Dict[Path, int]:
    return {log: log.stat().st_size for log in (local.workdir / "out").glob("dora-daemon*.txt")}


def _dora_lines(
    local: LocalDora, ids: Tuple[str, ...], since: Dict[Path, int]
) -> Dict[str, List[str]]:
    """The daemon's lines about each node written since ``since`` (this run only: one
    private dora serves a whole test module)."""
    lines: Dict[str, List[str]] = {node: [] for node in ids}
    for log in sorted((local.workdir / "out").glob("dora-daemon*.txt")):
        with open(log, "rb") as f:
            f.seek(since.get(log, 0))
            text = f.read().decode(errors="replace")
        for line in text.splitlines():
            for node in ids:
                if (
                    f'"node_id":"{node}"' in line
                    or f"{node} was killed" in line
                    or f"`{node}`" in line
                    or f" {node}:" in line
                ):
                    lines[node].append(line[-400:])
    return lines


def observe(local: LocalDora, samples: Path, scenario: Scenario, record: Path, name: str) -> Run:
    """Start the scenario, stop it with ``inspect --stop`` and watch what really happens."""
    since = _log_sizes(local)
    uuid = local.start_dataflow(samples / scenario.yml, name)
    pids = spawned_pids(local, name, uuid, scenario.nodes)
    time.sleep(scenario.settle_s)
    fates = {node: ProcessFate(pid, catches_sigterm(pid)) for node, pid in pids.items()}
    args = [sys.executable, "-m", "dora_doctor", "inspect", name, "--stop"]
    args += [
        "--grace-duration",
        GRACE,
        "--stop-after",
        STOP_AFTER,
        "--json",
        "--record",
        str(record),
    ]
    # the dora of the line under test, as a user of that line has it on PATH: without it
    # dora-doctor drives a 1.0.1 coordinator with the 1.1.0 CLI beside it and takes 1.1.0's
    # facts (startup_timeout advice 1.0.1 refuses)
    args += ["--dora", local.dora]
    if local.version.startswith("0."):
        args += ["--coordinator-port", str(local.coordinator_port)]
    proc = subprocess.Popen(
        args, env=local.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stop_at: List[float] = []
    gone_at: Dict[int, float] = {}
    done = threading.Event()

    def watch() -> None:
        parent = psutil.Process(proc.pid)
        watched = {f.pid for f in fates.values()}
        while not done.is_set():
            now = time.time()
            if not stop_at:
                try:
                    for child in parent.children(recursive=True):
                        cmd = child.cmdline()
                        if len(cmd) > 1 and "stop" in cmd[1:3]:
                            stop_at.append(child.create_time())
                            for fate in fates.values():
                                # again at the stop: on a loaded machine a node may install
                                # its handler after the settle time (read first at spawn)
                                if not fate.catches_sigterm:
                                    fate.catches_sigterm = catches_sigterm(fate.pid)
                                try:
                                    fate.children = [
                                        c.pid for c in psutil.Process(fate.pid).children(True)
                                    ]
                                except psutil.Error:
                                    pass
                                watched.update(fate.children)
                            break
                except psutil.Error:
                    pass
            for pid in list(watched):
                if pid not in gone_at and not _alive(pid):
                    gone_at[pid] = now
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
        time.sleep(0.5)
        done.set()
        watcher.join()
    start = stop_at[0] if stop_at else None
    for fate in fates.values():
        if start is not None and fate.pid in gone_at:
            fate.gone_after_stop_s = round(gone_at[fate.pid] - start, 2)
        for child in fate.children:
            fate.children_gone_after_stop_s[child] = (
                round(gone_at[child] - start, 2) if start and child in gone_at else None
            )
    time.sleep(1.0)  # dora's end lines for the nodes
    report = json.loads(out) if out.strip() else {}
    nodes: Dict[str, Dict[str, Any]] = {}
    for dataflow in report.get("dataflows", []):
        for node in dataflow.get("nodes", []):
            nodes[node["id"]] = node
    return Run(
        scenario,
        report,
        nodes,
        fates,
        _dora_lines(local, scenario.nodes, since),
        proc.returncode,
        err,
        start,
    )


def leftovers(run: Run) -> List[int]:
    """PIDs of the run (nodes, their children) still alive; killed, so nothing leaks."""
    alive = []
    for fate in run.fates.values():
        for pid in [fate.pid, *fate.children]:
            if _alive(pid):
                alive.append(pid)
                try:
                    psutil.Process(pid).kill()
                except psutil.Error:
                    pass
    return alive
