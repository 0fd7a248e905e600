"""Find the running dataflows, their nodes and the Python process behind each node.

The dora CLI (``dora list`` / ``dora node list`` in JSON, dora ≥ 0.4) is asked first. Where
it cannot say (dora 0.3.x has no ``node list``, or the CLI is missing), node processes are
found by the ``DORA_NODE_CONFIG`` variable dora puts in every node's environment. Either
way the PID dora knows may be a ``uv run`` wrapper, so the Python interpreter is looked
for among its descendants before the node is called "not Python". Nodes of a dataflow spread
over machines get their machine, and those not on this host are left alone
(:mod:`~dora_doctor.machines`).
"""

from __future__ import annotations

import contextlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import psutil
import yaml

from dora_doctor.dora import descriptor, machines
from dora_doctor.dora.client import DoraCli
from dora_doctor.errors import FAILURE, DoctorError
from dora_doctor.model import NOT_PYTHON, Dataflow, NodeProcess

_PYTHON_EXE = re.compile(r"^python(?P<version>\d+(?:\.\d+)?)?[a-z]*(?:\.exe)?$", re.I)
_LIBPYTHON = re.compile(r"libpython(?P<version>\d+\.\d+)")
_RUNNING = {"running", "starting"}


@dataclass
class Discovery:
    """What dora-doctor found, and how: ``source`` is ``cli`` or ``environ``."""

    dora_version: Optional[str]
    dataflows: List[Dataflow]
    source: str


def discover(cli: Optional[DoraCli], ask_version: bool = True) -> Discovery:
    """All running dataflows with their node processes resolved for sampling."""
    version = cli.version() if cli and ask_version else None
    dataflows: Optional[List[Dataflow]] = None
    source = "cli"
    if cli is not None:
        dataflows = dataflows_from_cli(cli)
    if dataflows is None or any(
        not df.nodes or any(_stale(n.pid) for n in df.nodes) for df in dataflows
    ):
        by_env = dataflows_from_environ(psutil.process_iter())
        if dataflows is None:
            dataflows, source = by_env, "environ"
        else:
            _fill_from_environ(dataflows, by_env)
    machines.locate(dataflows)
    for dataflow in dataflows:
        for node in dataflow.nodes:
            resolve_process(node)
    return Discovery(version, dataflows, source)


def dataflows_from_cli(cli: DoraCli) -> Optional[List[Dataflow]]:
    """Dataflows and nodes from the CLI, or None when this CLI has no JSON listing.

    Both listings are asked at once: each is a dora process start plus a round trip to the
    coordinator, and together they were a fifth of ``inspect``'s time to its first sample.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        asked_nodes = pool.submit(cli.list_nodes)
        try:
            rows = cli.list_dataflows()
        except DoctorError as err:
            if "unexpected argument" in str(err) or "unrecognized" in str(err):
                return None
            raise
    dataflows = parse_dataflow_rows(rows)
    try:
        node_rows = asked_nodes.result()
    except DoctorError as err:
        if "no dora coordinator" in str(err):
            raise
        return dataflows  # old CLI without `node list`: nodes come from /proc
    attach_node_rows(dataflows, node_rows)
    return dataflows


def parse_dataflow_rows(rows: Iterable[Dict[str, object]]) -> List[Dataflow]:
    """Rows of ``dora list --format json``: ``uuid,name,status,nodes,cpu,memory``."""
    dataflows = []
    for row in rows:
        uuid = str(row.get("uuid") or "")
        if not uuid:
            continue
        name = row.get("name")
        status = row.get("status")
        dataflows.append(Dataflow(uuid=uuid, name=str(name) if name else None, status=_str(status)))
    return dataflows


def attach_node_rows(dataflows: List[Dataflow], rows: Iterable[Dict[str, object]]) -> None:
    """Rows of ``dora node list --format json`` (all values strings) joined to their dataflow.

    The row names its dataflow by name when it has one and by UUID otherwise.
    """
    by_key: Dict[str, Dataflow] = {}
    for dataflow in dataflows:
        by_key[dataflow.uuid] = dataflow
        if dataflow.name:
            by_key.setdefault(dataflow.name, dataflow)
    for row in rows:
        owner = by_key.get(str(row.get("dataflow") or ""))
        if owner is None and len(dataflows) == 1:
            owner = dataflows[0]
        if owner is None:
            continue
        owner.nodes.append(
            NodeProcess(
                id=str(row.get("node") or "?"),
                dataflow=owner.uuid,
                pid=_pid(row.get("pid")),
                status=_str(row.get("status")),
                machine=_str(row.get("machine")),
            )
        )


def dataflows_from_environ(processes: Iterable[psutil.Process]) -> List[Dataflow]:
    """Node processes found by their ``DORA_NODE_CONFIG`` environment variable (or, for
    dora's Python runtime before 1.0, the ``node:`` part of ``DORA_RUNTIME_CONFIG``)."""
    found: Dict[str, Dataflow] = {}
    seen: set[Tuple[str, str]] = set()
    for proc in processes:
        try:
            environ = proc.environ()
        except (psutil.Error, OSError):
            continue
        config = environ.get("DORA_NODE_CONFIG")
        if config:
            ids = parse_node_config(config)
        elif environ.get("DORA_RUNTIME_CONFIG"):
            ids = _runtime_ids(machines.node_config(environ)[1])
        else:
            continue
        if ids is None:
            continue
        dataflow_id, node_id = ids
        # a uv wrapper and its interpreter both carry the variable: keep the outermost
        if (dataflow_id, node_id) in seen:
            continue
        seen.add((dataflow_id, node_id))
        dataflow = found.setdefault(dataflow_id, Dataflow(uuid=dataflow_id, name=None))
        dataflow.nodes.append(NodeProcess(id=node_id, dataflow=dataflow_id, pid=proc.pid))
    return list(found.values())


def _runtime_ids(node: Dict[str, object]) -> Optional[Tuple[str, str]]:
    dataflow_id, node_id = node.get("dataflow_id"), node.get("node_id")
    return (str(dataflow_id), str(node_id)) if dataflow_id and node_id else None


def parse_node_config(text: str) -> Optional[Tuple[str, str]]:
    """(dataflow_id, node_id) from the YAML dora passes to a node in DORA_NODE_CONFIG."""
    try:
        value = descriptor.load_yaml(text)
    except (yaml.YAMLError, descriptor.YamlTooBig):
        value = None
    if isinstance(value, dict):
        dataflow_id, node_id = value.get("dataflow_id"), value.get("node_id")
        if dataflow_id and node_id:
            return str(dataflow_id), str(node_id)
    dataflow_match = re.search(r"^dataflow_id:\s*(\S+)", text, re.M)
    node_match = re.search(r"^node_id:\s*(\S+)", text, re.M)
    if dataflow_match and node_match:
        return dataflow_match[1], node_match[1]
    return None


def _fill_from_environ(dataflows: List[Dataflow], by_env: List[Dataflow]) -> None:
    """Nodes and PIDs the CLI does not give yet, from ``DORA_NODE_CONFIG`` of the processes.

    Right after ``dora start``, 1.1.0's ``node list`` shows each node for about a second as
    status ``Unknown`` with pid ``-`` although its process runs: without this, an ``inspect``
    started then would skip every node as having no process. A PID that has ended is
    replaced the same way.
    """
    env_by_uuid = {df.uuid: df for df in by_env}
    for dataflow in dataflows:
        found = env_by_uuid.get(dataflow.uuid)
        if found is None:
            continue
        if not dataflow.nodes:
            dataflow.nodes = found.nodes
            continue
        pids = {n.id: n.pid for n in found.nodes}
        for node in dataflow.nodes:
            if _stale(node.pid) and pids.get(node.id) is not None:
                node.pid = pids[node.id]


def _stale(pid: Optional[int]) -> bool:
    """No process, or one that has ended: right after a node restart the CLI can still
    show the old process's PID while the new one runs."""
    return pid is None or not process_running(pid)


def python_version_of(proc: psutil.Process) -> Tuple[bool, Optional[str]]:
    """Is this process a CPython interpreter, and which minor version?

    Read from the executable's name (``python3.11``) or a mapped ``libpython3.11.so``:
    nothing of the user's is executed to find out. Another user's process hides both
    (``/proc/PID/exe`` and ``maps`` need ptrace rights) but not its command line: going by
    that keeps a root node "Python", so py-spy's refusal is what the user gets told about
    (sudo, CAP_SYS_PTRACE, ptrace_scope) rather than a misleading "not Python".
    """
    try:
        exe = Path(proc.exe()).name
    except psutil.AccessDenied:
        exe = _command_name(proc)
    except (psutil.Error, OSError):
        exe = ""
    match = _PYTHON_EXE.match(exe)
    version = match["version"] if match else None
    if match and version and "." in version:
        return True, version
    try:
        for mapping in proc.memory_maps(grouped=True):
            lib = _LIBPYTHON.search(Path(mapping.path).name)
            if lib:
                return True, lib["version"]
    except (psutil.Error, OSError):
        pass
    return bool(match), None


def _command_name(proc: psutil.Process) -> str:
    try:
        cmdline = proc.cmdline()
    except (psutil.Error, OSError):
        return ""
    return Path(cmdline[0]).name if cmdline else ""


def resolve_process(node: NodeProcess) -> None:
    """Point ``sample_pid`` at the node's Python interpreter, or say why it has none."""
    if node.remote:
        return  # its PID belongs to another machine
    if node.pid is None:
        node.skip_reason = "dora reports no process for this node"
        return
    try:
        proc = psutil.Process(node.pid)
        candidates = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        node.skip_reason = f"process {node.pid} has exited"
        return
    except psutil.Error as err:
        node.skip_reason = f"process {node.pid} cannot be inspected: {err}"
        return
    for candidate in candidates:
        is_python, version = python_version_of(candidate)
        if is_python:
            node.python, node.python_version, node.sample_pid = True, version, candidate.pid
            node.catches_sigterm = catches_sigterm(candidate.pid)
            node.python_prefix = python_prefix(candidate)
            with contextlib.suppress(psutil.Error, OSError):
                node.started = candidate.create_time()
            environ = _environ_of(candidate)
            node.operators = runtime_operators(candidate, node.id, environ)
            node.daemon_addr = machines.daemon_address(machines.node_config(environ)[1])
            return
    node.skip_reason = NOT_PYTHON


def _environ_of(proc: psutil.Process) -> Dict[str, str]:
    """The process's environment; empty when it cannot be read (not ours, gone)."""
    try:
        return dict(proc.environ())
    except (psutil.Error, OSError):
        return {}


RUNTIME_CALL = "start_runtime"  # `python -uc "import dora; dora.start_runtime()"`


def runtime_operators(
    proc: psutil.Process, node_id: str, environ: Dict[str, str]
) -> Dict[str, str]:
    """The Python operators dora's runtime in ``proc`` runs: operator id → file, the relative
    paths made absolute against the process's working directory (where the runtime resolves
    them), so the analysis can tell an operator's frames by their file. Empty for a plain
    node, or when the environment (``proc``'s) could not be read."""
    runtime = environ.get("DORA_RUNTIME_CONFIG")
    found: Dict[str, str] = {}
    if runtime:
        found = descriptor.operator_files(machines.load_config(runtime))
    elif environ.get("DORA_NODE_CONFIG") and RUNTIME_CALL in " ".join(_cmdline(proc)):
        config = machines.load_config(environ["DORA_NODE_CONFIG"])
        found = descriptor.operator_files(config, node_id)
    if not found:
        return {}
    try:
        cwd: Optional[str] = proc.cwd()
    except (psutil.Error, OSError):
        cwd = None
    for ident, source in found.items():
        if cwd and "://" not in source and not Path(source).is_absolute():
            found[ident] = os.path.normpath(os.path.join(cwd, source))
    return found


def _cmdline(proc: psutil.Process) -> List[str]:
    try:
        return list(proc.cmdline())
    except (psutil.Error, OSError):
        return []


SIGTERM_BIT = 1 << (15 - 1)  # signal N is bit N-1 of the SigCgt mask


def catches_sigterm(pid: int) -> Optional[bool]:
    """Does the process catch SIGTERM (a handler installed, in Python or C)?

    From ``SigCgt`` in /proc/PID/status, the kernel's own record; None when it cannot be
    read (another machine, no /proc, the process is gone): then no handler is claimed either
    way.
    """
    mask = sigcgt_mask(pid)
    return None if mask is None else bool(mask & SIGTERM_BIT)


def sigcgt_mask(pid: int) -> Optional[int]:
    """The ``SigCgt`` mask of ``pid``; None when the process is gone or the line unreadable.
    Read as bytes, once per node every 50 ms while sampling (capture/sigcgt.py)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            return _sigcgt_of(status.read(8192))
    except OSError:
        return None


def parse_sigcgt(status: str) -> Optional[bool]:
    mask = _sigcgt_of(status.encode(errors="replace"))
    return None if mask is None else bool(mask & SIGTERM_BIT)


def _sigcgt_of(text: bytes) -> Optional[int]:
    start = text.find(b"SigCgt:")
    if start < 0 or (start > 0 and text[start - 1 : start] != b"\n"):
        return None
    end = text.find(b"\n", start)
    try:
        return int(text[start + 7 : end if end >= 0 else None].strip(), 16)
    except ValueError:
        return None


def python_prefix(proc: psutil.Process) -> Optional[str]:
    """The interpreter's prefix (``/usr``, ``~/.pyenv/versions/3.11.7``): ``bin/python3.11``'s
    grandparent; None when the executable cannot be read."""
    try:
        exe = Path(proc.exe())
    except (psutil.Error, OSError):
        return None
    return str(exe.parent.parent) if exe.parent.name == "bin" else None


def stat_fields(pid: int, proc: str = "/proc") -> List[bytes]:
    """The fields of /proc/PID/stat after the command name, state first (raises OSError).

    The name, in parentheses, may itself hold spaces and parentheses: fields are counted
    from the last ``)`` (proc(5)). One read gives both a process's state and, while it is a
    zombie, its wait status: on an exit, every read saved shortens the race with dora's
    ``waitpid``."""
    with open(f"{proc}/{pid}/stat", "rb") as stat:
        text = stat.read(4096)
    return text[text.rfind(b")") + 2 :].split()


def process_state(pid: int) -> Tuple[bool, Optional[int]]:
    """(running, wait status): alive and not a zombie, and the wait status once it has
    exited while its parent (dora's daemon) has not reaped it yet.

    The kernel keeps the wait status in the last field of /proc/PID/stat (Linux >= 3.5)
    while the process is a zombie: the only way to learn how a process that is not our
    child ended, and a race with the daemon's ``waitpid`` that is won only when the exit is
    seen at once (a pidfd wakes the stop watch at the exit)."""
    try:
        fields = stat_fields(pid)
    except FileNotFoundError:
        return False, None
    except OSError:
        return _running_by_psutil(pid), None
    state = fields[0] if fields else b""
    if state == b"Z":
        status = fields[-1] if len(fields) >= 50 and fields[-1].isdigit() else None
        return False, int(status) if status is not None else None
    return bool(state) and state not in (b"X", b"x"), None


def process_running(pid: int) -> bool:
    """Alive and not a zombie: a node that exited stays a zombie until dora reaps it.

    Asked for every followed node every second by ``watch`` and every 20 ms by ``inspect``:
    one read of /proc/PID/stat, a fifth of what building a psutil.Process and asking its
    status costs; psutil where there is no /proc."""
    return process_state(pid)[0]


def _running_by_psutil(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def zombie_wait_status(pid: int) -> Optional[int]:
    """The wait status of ``pid`` if it has exited and dora has not reaped it yet."""
    return process_state(pid)[1]


def select_dataflow(dataflows: List[Dataflow], wanted: Optional[str]) -> Dataflow:
    """The dataflow the user means: by name or UUID (or UUID prefix), or the only running one."""
    running = [df for df in dataflows if (df.status or "running").lower() in _RUNNING]
    if wanted:
        exact = [df for df in dataflows if wanted in (df.uuid, df.name)]
        if not exact:
            exact = [df for df in dataflows if df.uuid.startswith(wanted)]
        if len(exact) == 1:
            return exact[0]
        if len(exact) > 1:
            raise DoctorError(
                f"{wanted!r} matches several dataflows: {_names(exact)}; use the UUID"
            )
        raise DoctorError(
            f"no dataflow named {wanted!r} is running"
            + (f"; running: {_names(running)}" if running else "; none is running")
        )
    if len(running) == 1:
        return running[0]
    if not running:
        raise DoctorError(
            "no dataflow is running: start one with `dora start DATAFLOW.yml --detach`", FAILURE
        )
    raise DoctorError(f"several dataflows are running, name one: {_names(running)}")


def _names(dataflows: Iterable[Dataflow]) -> str:
    return ", ".join(f"{df.name} ({df.uuid})" if df.name else df.uuid for df in dataflows)


def _pid(value: object) -> Optional[int]:
    try:
        pid = int(str(value))
    except ValueError:
        return None
    return pid if pid > 0 else None


def _str(value: object) -> Optional[str]:
    return None if value is None or value == "" else str(value)
