"""A private dora coordinator + daemon, for tests, ``make demo`` and ``tune-grace --local``.

Why a private instance: a user's dora listens on the default port 6013 and keeps its state in
the shared ``~/.dora/coordinator.redb``; rehearsing stops against it could stop their dataflows
or mix our runs into their history. Parallel test runs would also find each other. So every
:class:`LocalDora` gets its own free loopback ports, its own state file and its own working
directory (where the coordinator and daemon write ``out/dora-*.txt``), a daemon without zenoh
multicast scouting, and the CLI is pointed at it only through the environment it hands out.

Node interpreter: the daemon runs a ``.py`` node as ``python -u FILE`` found on its PATH, so
the directory of the running ``sys.executable`` is put first on PATH: nodes then import the same
``dora`` package as the code that drives them. A dora installed in another environment (another
release, for the version matrix) brings its own ``python`` whose ``dora`` matches the daemon's:
that directory goes first instead, or the one of an explicit ``node_python``.

Every release line from 0.3.7 is started too: what its coordinator, daemon and CLI need
differently comes from :mod:`dora_doctor.dora.versions`, chosen by the version asked once at
start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Dict, List, Optional, Set, Type

import psutil

from dora_doctor.dora import versions
from dora_doctor.dora.client import DoraCli
from dora_doctor.dora.discover import dataflows_from_environ
from dora_doctor.errors import FAILURE, DoctorError
from dora_doctor.executables import quiet_rust_env
from dora_doctor.units import parse_duration

_POLL = 0.1


class LocalDoraError(DoctorError):
    """The private dora instance could not be started or did not do what was asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message, FAILURE)


def node_environment(
    base: Optional[Dict[str, str]] = None, python: Optional[Path] = None
) -> Dict[str, str]:
    """``base`` (default: ours) without RUST_BACKTRACE, with this Python's directory (or that
    of ``python``) first on PATH.

    RUST_BACKTRACE=1 turns every dora error into pages of backtrace; the PATH order makes the
    daemon start ``.py`` nodes with this interpreter.
    """
    env = quiet_rust_env(base)
    bindir = str(Path(python or sys.executable).parent)
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bindir]
    env["PATH"] = os.pathsep.join([bindir, *rest])
    return env


def locate_dora(env: Optional[Dict[str, str]] = None) -> Optional[str]:
    """The ``dora`` executable that nodes' PATH would find first (beside this Python if any)."""
    path = node_environment(env)["PATH"]
    return shutil.which("dora", path=path)


def _free_ports(count: int) -> List[int]:
    """Distinct free loopback ports (held open together, so no two are the same)."""
    sockets: List[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


# `dora cluster status` names a daemon `<machine id>-<uuid v7>` (a bare UUID without one)
_DAEMON_ID = re.compile(
    r"^(\S+?)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\s", re.M
)


@dataclass
class ExtraDaemon:
    """A daemon started by :meth:`LocalDora.add_daemon`, in its own working directory."""

    machine_id: str
    workdir: Path
    listen_port: int
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> Path:
        """dora ≥ 0.4 names a daemon's log after its machine id."""
        return self.workdir / "out" / f"dora-daemon-{self.machine_id}.txt"


def absolute_node_paths(yml: Path, target: Path) -> Path:
    """Write ``yml`` to ``target`` with each node's relative ``path`` made absolute.

    Once a node is pinned to a machine (``deploy: machine: ID``), dora resolves every node's
    ``path`` on the daemon that runs it, in that daemon's ``_work/<session>/`` folder, not
    beside the dataflow file: a relative path that works for ``dora start`` on one machine
    is not found. Paths that are not files beside the dataflow (executables on PATH,
    ``dynamic``) are left alone.
    """
    import yaml

    from dora_doctor.dora import descriptor as dataflow_file

    descriptor = dataflow_file.load(Path(yml))
    base = Path(yml).resolve().parent
    for node in descriptor.get("nodes", []) if isinstance(descriptor, dict) else []:
        path = node.get("path") if isinstance(node, dict) else None
        if isinstance(path, str) and not Path(path).is_absolute() and (base / path).exists():
            node["path"] = str(base / path)
    Path(target).write_text(yaml.safe_dump(descriptor, sort_keys=False))
    return Path(target)


def _alive(proc: Optional[subprocess.Popen[bytes]]) -> bool:
    return proc is not None and proc.poll() is None


@dataclass
class LocalDora:
    """A private coordinator + daemon on loopback with free ports in its own directory."""

    workdir: Path
    coordinator_port: int
    daemon_listen_port: int
    dora: str
    env: Dict[str, str] = field(repr=False)
    version: Optional[str] = None  # `dora --version`, asked once in start()
    daemon_port: Optional[int] = None  # 0.3.x: the coordinator's port for daemons (not the CLI's)
    _coordinator: Optional[subprocess.Popen[bytes]] = field(
        default=None, init=False, repr=False, compare=False
    )
    _daemon: Optional[subprocess.Popen[bytes]] = field(
        default=None, init=False, repr=False, compare=False
    )
    _closed: bool = field(default=False, init=False, repr=False, compare=False)
    extra_daemons: List[ExtraDaemon] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    @classmethod
    def start(
        cls,
        workdir: Path,
        dora: Optional[str] = None,
        timeout: float = 30.0,
        node_python: Optional[Path] = None,
    ) -> LocalDora:
        """Start coordinator, then daemon, and return once the daemon is registered.

        Ready means ``dora status`` reports both running (the coordinator only counts a daemon
        once it has connected) and ``dora list`` answers. A port taken between choosing it and
        binding it makes a process exit at once; that is retried with new ports.
        """
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        executable = dora or locate_dora()
        if executable is None:
            raise LocalDoraError(
                "the dora command was not found: pip install dora-rs-cli (or pass dora=PATH)"
            )
        deadline = time.monotonic() + timeout
        try:
            version = DoraCli(executable).version()
        except DoctorError as err:
            raise LocalDoraError(str(err)) from err
        beside = Path(executable).parent / "python"
        python = node_python or (beside if beside.exists() else None)
        last_error: Optional[LocalDoraError] = None
        for _attempt in range(3):
            coordinator_port, listen_port, daemon_port = _free_ports(3)
            env = node_environment(python=python)
            env["DORA_COORDINATOR_ADDR"] = "127.0.0.1"
            env["DORA_COORDINATOR_PORT"] = str(coordinator_port)
            line = versions.release_line(version)
            if not line.zenoh_no_multicast_flag:
                zenoh = workdir / "zenoh.json5"
                zenoh.write_text(versions.ZENOH_LOOPBACK)
                env["ZENOH_CONFIG"] = str(zenoh)
            instance = cls(
                workdir,
                coordinator_port,
                listen_port,
                executable,
                env,
                version,
                daemon_port if line.split_control_port else None,
            )
            try:
                instance._launch(deadline)
                return instance
            except LocalDoraError as err:
                instance.close()
                last_error = err
                if time.monotonic() >= deadline:
                    break
            except BaseException:
                instance.close()
                raise
        assert last_error is not None
        raise last_error

    @property
    def coordinator_pid(self) -> Optional[int]:
        """PID of the coordinator process (None before start)."""
        return self._coordinator.pid if self._coordinator else None

    @property
    def daemon_pid(self) -> Optional[int]:
        """PID of the daemon process; nodes are its children."""
        return self._daemon.pid if self._daemon else None

    def _spawn(self, role: str, args: List[str]) -> subprocess.Popen[bytes]:
        # Own session: a Ctrl-C in the user's terminal must not reach dora behind our back.
        with open(self.workdir / f"{role}.console.txt", "ab") as console:
            return subprocess.Popen(
                [self.dora, role, *args],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=console,
                start_new_session=True,
            )

    def _launch(self, deadline: float) -> None:
        # A fresh state file: a store left by an earlier run (same workdir, e.g. `make demo`)
        # would bring back its dataflows, and a stale "Running" name makes `dora stop` ambiguous.
        store = self.workdir / "coordinator.redb"
        store.unlink(missing_ok=True)
        daemons_port = self.daemon_port or self.coordinator_port
        self._coordinator = self._spawn(
            "coordinator",
            versions.coordinator_args(self.version, daemons_port, self.coordinator_port, store),
        )
        self._wait_status(deadline, need_daemon=False)
        self._daemon = self._spawn(
            "daemon", versions.daemon_args(self.version, daemons_port, self.daemon_listen_port)
        )
        self._wait_status(deadline, need_daemon=True)
        try:
            self.client.list_dataflows()
        except DoctorError as err:
            raise self._failure(f"`dora list` failed: {err}") from err

    def _wait_status(self, deadline: float, need_daemon: bool) -> None:
        """Poll ``dora status --format json`` (before 1.0: ``dora check``) until the coordinator
        (and daemon) run."""
        while True:
            for role, proc in (("coordinator", self._coordinator), ("daemon", self._daemon)):
                if proc is not None and proc.poll() is not None:
                    raise self._failure(f"dora {role} exited with code {proc.returncode}")
            if not versions.release_line(self.version).has_status:
                if self._legacy_check(need_daemon):
                    return
                report = None
            else:
                try:
                    status = self.cli("status", "--format", "json", timeout=5.0)
                    report = json.loads(status.stdout)
                except (LocalDoraError, ValueError):
                    report = None
            if isinstance(report, dict):
                coordinator = report.get("coordinator") or {}
                daemon = report.get("daemon") or {}
                if coordinator.get("status") == "running" and (
                    not need_daemon or daemon.get("status") == "running"
                ):
                    return
            if time.monotonic() >= deadline:
                what = "daemon to connect" if need_daemon else "coordinator to listen"
                raise self._failure(f"timed out waiting for the dora {what}")
            time.sleep(_POLL)

    def _legacy_check(self, need_daemon: bool) -> bool:
        """``dora check`` (before 1.0) prints ``Dora Coordinator: ok`` / ``Dora Daemon: ok``
        (0.3.x; 0.4/0.5: ``✓ Coordinator: Running``, or ``Not running``) and exits non-zero
        until both answer."""
        try:
            result = self.cli("check", *self.client.connection_args(), timeout=5.0)
        except LocalDoraError:
            return False
        text = (result.stdout + result.stderr).lower()
        coordinator_ok = re.search(r"coordinator:\s*(?:ok|running)", text) is not None
        daemon_ok = re.search(r"daemon:\s*(?:ok|running)", text) is not None
        return coordinator_ok and (daemon_ok or not need_daemon)

    def _failure(self, message: str) -> LocalDoraError:
        parts = [f"{message} (port {self.coordinator_port}, in {self.workdir})"]
        for role in ("coordinator", "daemon"):
            tail = _tail(self.workdir / f"{role}.console.txt")
            if tail:
                parts.append(f"--- dora {role} output:\n{tail}")
        return LocalDoraError("\n".join(parts))

    @property
    def client(self) -> DoraCli:
        """The dora CLI pointed at this instance, as the rest of dora-doctor uses it."""
        return DoraCli(
            self.dora,
            "127.0.0.1",
            self.coordinator_port,
            base_env=self.env,
            known_version=self.version or "",
        )

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``dora ARGS`` against this instance; the caller checks ``returncode``."""
        try:
            return self.client.run(args, timeout=timeout)
        except DoctorError as err:
            raise LocalDoraError(str(err)) from err

    def start_dataflow(self, yml: Path, name: str) -> str:
        """``dora start YML --name NAME --detach``; returns the dataflow UUID.

        Node logs go to ``<yml's directory>/out/<uuid>/``, so callers that want them out of a
        source tree copy the dataflow somewhere first.
        """
        try:
            return self.client.start(Path(yml), name)
        except DoctorError as err:
            raise LocalDoraError(str(err)) from err

    def stop_dataflow(
        self, name: str, grace: Optional[str] = None, timeout: Optional[float] = None
    ) -> subprocess.CompletedProcess[str]:
        """``dora stop NAME [--grace-duration GRACE]``; returned as is, since a node killed by
        SIGKILL makes dora exit 1, which is an outcome to report, not an error.

        ``timeout`` defaults to dora's own SIGKILL point (1.5 × grace, 10 s default grace) + 30 s.
        """
        args = [*versions.stop_args(self.version, name), *self.client.connection_args()]
        if grace is not None:
            args += ["--grace-duration", grace]
        if timeout is None:
            default_grace = versions.default_grace_s(self.version) or 10.0
            grace_s = parse_duration(grace, "grace") if grace else default_grace
            timeout = versions.sigkill_factor(self.version) * grace_s + 30.0
        return self.cli(*args, timeout=timeout)

    def node_pids(self, name: str) -> Dict[str, int]:
        """Node id → PID for the nodes of dataflow NAME that are running now."""
        if not versions.release_line(self.version).has_node_list:
            return self._legacy_node_pids(name)
        result = self.cli(
            "node",
            "list",
            "--dataflow",
            name,
            "--format",
            "json",
            *self.client.connection_args(),
            timeout=15.0,
        )
        if result.returncode != 0:
            raise LocalDoraError(f"`dora node list` failed: {result.stderr.strip()}")
        pids: Dict[str, int] = {}
        for line in result.stdout.splitlines():
            try:
                row = json.loads(line)
                pid = int(row["pid"])  # "-" before spawn, "0" once stopped
            except (ValueError, KeyError, TypeError):
                continue
            if pid > 0:
                pids[str(row["node"])] = pid
        return pids

    def _legacy_node_pids(self, name: str) -> Dict[str, int]:
        """0.3.x has no ``node list``: the daemon's children name their node and dataflow in
        DORA_NODE_CONFIG, and ``dora list`` maps the dataflow's name to its UUID."""
        try:
            rows = self.client.list_dataflows()
            children = psutil.Process(self._daemon.pid).children() if self._daemon else []
        except (DoctorError, psutil.Error) as err:
            raise LocalDoraError(f"cannot list the nodes of {name}: {err}") from err
        uuids = {str(row["uuid"]) for row in rows if name in (row.get("name"), row.get("uuid"))}
        return {
            node.id: node.pid
            for dataflow in dataflows_from_environ(children)
            if dataflow.uuid in uuids
            for node in dataflow.nodes
            if node.pid is not None
        }

    def wait_running(self, name: str, nodes: int, timeout: float = 30.0) -> Dict[str, int]:
        """Poll until ``nodes`` nodes of NAME have a live PID; returns node id → PID."""
        deadline = time.monotonic() + timeout
        while True:
            pids = {
                node: pid for node, pid in self.node_pids(name).items() if psutil.pid_exists(pid)
            }
            if len(pids) >= nodes:
                return pids
            if time.monotonic() >= deadline:
                raise LocalDoraError(
                    f"dataflow {name}: {len(pids)} of {nodes} nodes running after {timeout:g} s "
                    f"({', '.join(sorted(pids)) or 'none'})"
                )
            time.sleep(_POLL)

    def _members(self) -> List[psutil.Process]:
        """Coordinator, daemon, their descendants and anything left in their sessions."""
        leaders: Set[int] = {p.pid for p in self._servers() if p is not None}
        found: Dict[int, psutil.Process] = {}
        for pid in leaders:
            try:
                proc = psutil.Process(pid)
                found[pid] = proc
                for child in proc.children(recursive=True):
                    found[child.pid] = child
            except psutil.Error:
                pass
        # Orphaned nodes keep the session of the daemon that spawned them (unless they setsid).
        for proc in psutil.process_iter():
            try:
                if proc.pid not in found and os.getsid(proc.pid) in leaders:
                    found[proc.pid] = proc
            except (OSError, psutil.Error):
                pass
        return list(found.values())

    def close(self) -> None:
        """Stop every dataflow, ``dora down``, then end whatever of ours is still alive.

        Idempotent and never raises: it runs in ``finally`` blocks and fixtures, where an error
        would hide the one that matters. The polite path first (nodes get STOP and a 1 s grace),
        then SIGTERM and SIGKILL to the coordinator, daemon and any node left in their trees.
        """
        if self._closed:
            return
        self._closed = True
        try:
            members = self._members()
        except Exception:
            members = []
        if _alive(self._coordinator):
            for args in versions.teardown_commands(self.version):
                try:
                    self.cli(*args, *self.client.connection_args(), timeout=15.0)
                except Exception:
                    pass
        for proc in self._servers():
            try:
                if proc is not None:
                    proc.wait(timeout=3.0)  # `dora down` ends both within milliseconds
            except Exception:
                pass
        try:
            leftovers = [p for p in members if p.is_running()]
            for member in leftovers:
                try:
                    member.terminate()
                except psutil.Error:
                    pass
            _, still = psutil.wait_procs(leftovers, timeout=2.0)
            for member in still:
                try:
                    member.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(still, timeout=2.0)
        except Exception:
            pass
        for proc in self._servers():
            try:
                if proc is not None:
                    proc.wait(timeout=1.0)  # reap: they are our children
            except Exception:
                pass

    def _servers(self) -> List[Optional[subprocess.Popen[bytes]]]:
        """Every dora process this instance started: coordinator, daemon, extra daemons."""
        return [self._coordinator, self._daemon, *(d.process for d in self.extra_daemons)]

    def add_daemon(
        self, machine_id: str, workdir: Optional[Path] = None, timeout: float = 30.0
    ) -> ExtraDaemon:
        """Start one more daemon, ``--machine-id MACHINE_ID``, for dataflows spread over machines.

        It runs in ``workdir`` (default ``<workdir>/<machine_id>``), so it writes its own
        ``out/dora-daemon-<machine_id>.txt`` there, as a daemon on another machine would, and
        nodes deployed to it (``deploy: machine: ID`` in the dataflow) run in its
        ``_work/<session>/`` folder. Ready when ``dora cluster status`` lists it; ``close()``
        ends it with the rest. dora ≥ 1.0 only (earlier lines have no ``cluster status``).
        """
        folder = Path(workdir or self.workdir / machine_id).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        (listen_port,) = _free_ports(1)
        args = [
            "daemon",
            "--machine-id",
            machine_id,
            "--coordinator-addr",
            "127.0.0.1",
            "--coordinator-port",
            str(self.coordinator_port),
            "--local-listen-port",
            str(listen_port),
            "--zenoh-no-multicast",
            "--quiet",
        ]
        with open(folder / f"daemon-{machine_id}.console.txt", "ab") as console:
            process = subprocess.Popen(
                [self.dora, *args],
                cwd=folder,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=console,
                start_new_session=True,
            )
        daemon = ExtraDaemon(machine_id, folder, listen_port, process)
        self.extra_daemons.append(daemon)
        deadline = time.monotonic() + timeout
        while machine_id not in self.machines():
            if process.poll() is not None or time.monotonic() >= deadline:
                what = f"exited with code {process.returncode}" if process.poll() else "timed out"
                tail = _tail(folder / f"daemon-{machine_id}.console.txt")
                raise LocalDoraError(
                    f"dora daemon --machine-id {machine_id} {what} before it registered "
                    f"(port {self.coordinator_port}, in {folder})"
                    + (f"\n--- its output:\n{tail}" if tail else "")
                )
            time.sleep(_POLL)
        return daemon

    def machines(self) -> List[str]:
        """Machine ids of the daemons the coordinator knows (``dora cluster status``)."""
        try:
            result = self.cli("cluster", "status", timeout=10.0)
        except LocalDoraError:
            return []
        return [m.group(1) for m in _DAEMON_ID.finditer(result.stdout)]

    def __enter__(self) -> LocalDora:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()
