"""Which machine each node of a dataflow runs on, and whether dora-doctor can reach it.

A dataflow can be spread over several daemons, one per machine (``dora daemon --machine-id
ID``; a node is pinned with ``deploy: machine: ID`` in the dataflow). ``dora node list``
(1.1.0) names no machine and reports each node's PID *on its own machine*, so a PID is only
worth sampling once the process behind it here is known to be that node. dora gives every
node process ``DORA_MACHINE_ID`` and ``DORA_NODE_CONFIG`` (which holds the whole dataflow,
``deploy`` of every node included), so one local node is enough to place all the others.

After the fact, the logs say it too: a daemon with a machine id writes
``out/dora-daemon-<ID>.txt`` and names itself in its spans (``DaemonId { machine_id:
Some("B"), … }``), and the coordinator's spawn line carries the dataflow with each node's
``deploy``."""

from __future__ import annotations

import functools
from typing import Any, Dict, Iterable, List, Optional, Tuple

from dora_doctor.errors import DoctorError
from dora_doctor.executables import option_value
from dora_doctor.model import REMOTE, Dataflow, NodeProcess


def remote_reason(machine: Optional[str]) -> str:
    """Why a node is not sampled, and how to get its samples anyway."""
    where = machine or "ID"
    on = f" on machine {machine}" if machine else " on another machine"
    return (
        f"{REMOTE}: runs{on}; run `dora-doctor inspect --machine {where} --record "
        f"{where}.ddrec` there and merge the recordings with `dora-doctor merge`"
    )


_UNREADABLE: Dict[str, str] = {"": "unreadable"}


def _environ(pid: int) -> Optional[Dict[str, str]]:
    """The process's environment; None if it is gone, ``_UNREADABLE`` if this user may not
    read it (a kernel thread's is readable, and empty)."""
    import psutil  # here, not at the top: postmortem imports this module, rarely needs it

    try:
        return psutil.Process(pid).environ()
    except psutil.NoSuchProcess:
        return None
    except (psutil.Error, OSError):
        return _UNREADABLE


@functools.lru_cache(maxsize=1)
def _config_loader() -> Any:
    """DORA_NODE_CONFIG is serde's YAML, with Rust enum tags (``daemon_communication: !Tcp``)
    that a plain safe loader refuses: they are read as the untagged value. libyaml's loader
    when PyYAML has it: each node's config holds the whole dataflow, and the pure-Python
    loader took 40 ms per node, most of ``inspect``'s attach time at 8 nodes. Built on first
    use: importing yaml is a sixth of ``postmortem``'s start-up, which seldom needs it."""
    import yaml

    class ConfigLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def untagged(loader: Any, suffix: str, node: Any) -> object:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_scalar(node)

    ConfigLoader.add_multi_constructor("!", untagged)
    return ConfigLoader


def _load(config: str) -> Dict[str, object]:
    """A node's config as a dict; {} for one that is not YAML or would expand past the
    limits of :func:`descriptor.load_yaml` (a node's environment is not to be trusted)."""
    import yaml

    from dora_doctor.dora.descriptor import YamlTooBig, load_yaml

    try:
        value = load_yaml(config, _config_loader())
    except (yaml.YAMLError, YamlTooBig):
        return {}
    return value if isinstance(value, dict) else {}


def load_config(config: str) -> Dict[str, object]:
    """A DORA_NODE_CONFIG or DORA_RUNTIME_CONFIG as a dict ({} when it is not one): serde's
    YAML with its Rust enum tags, within the limits of :func:`descriptor.load_yaml`."""
    return _load(config)


def node_config(environ: Dict[str, str]) -> Tuple[str, Dict[str, object]]:
    """A node process's own config (text, dict): ``DORA_NODE_CONFIG``, or for dora's Python
    runtime before 1.0 the ``node:`` part of ``DORA_RUNTIME_CONFIG`` (0.4.1 and 0.5.0 give the
    runtime no DORA_NODE_CONFIG; without this its PID looked like another machine's)."""
    config = environ.get("DORA_NODE_CONFIG") or ""
    if config:
        return config, _load(config)
    runtime = environ.get("DORA_RUNTIME_CONFIG") or ""
    node = _load(runtime).get("node") if runtime else None
    return (runtime, node) if isinstance(node, dict) else ("", {})


def daemon_address(config: Dict[str, object]) -> Optional[str]:
    """Where the node's ``Node()`` connects to its daemon, from its config's
    ``daemon_communication: !Tcp {socket_addr: 127.0.0.1:36687}`` (the tag is dropped on
    load; only the TCP transport has ``socket_addr``); None for shared memory, a Unix socket,
    or a config without it. Bounded: the text comes from the node's environment."""
    link = config.get("daemon_communication")
    address = link.get("socket_addr") if isinstance(link, dict) else None
    return address if isinstance(address, str) and len(address) <= 64 else None


def deployments(config: str) -> Dict[str, str]:
    """Node id → machine from ``deploy: machine:`` of every node in a DORA_NODE_CONFIG."""
    return _deployments(_load(config)) if "deploy" in config else {}


def _deployments(value: Dict[str, object]) -> Dict[str, str]:
    descriptor = value.get("dataflow_descriptor")
    nodes = descriptor.get("nodes") if isinstance(descriptor, dict) else None
    found: Dict[str, str] = {}
    default = _machine_of(descriptor.get("deploy")) if isinstance(descriptor, dict) else None
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict) and node.get("id"):
            machine = _machine_of(node.get("deploy")) or default
            if machine:
                found[str(node["id"])] = machine
    return found


def _machine_of(deploy: object) -> Optional[str]:
    machine = deploy.get("machine") if isinstance(deploy, dict) else None
    return str(machine) if machine else None


def daemon_machine(pid: int) -> Optional[str]:
    """``--machine-id`` of the ``dora daemon`` that ``pid`` descends from, if any."""
    import psutil

    try:
        for parent in psutil.Process(pid).parents():
            cmdline = parent.cmdline()
            if "daemon" in cmdline:
                return option_value(cmdline, "--machine-id")
    except (psutil.Error, OSError):
        pass
    return None


def locate(dataflows: Iterable[Dataflow]) -> None:
    """Give every node its ``machine`` and mark the ones whose process is not on this host.

    A node is here when the process at its PID carries its DORA_NODE_CONFIG. A PID that is
    another process here (or none) while dora says the node runs is the node's PID on
    another machine: it is neither sampled nor watched, and says so in ``skip_reason``.
    A process whose environment cannot be read is taken as the node, as before.
    """
    for dataflow in dataflows:
        deployed: Dict[str, str] = {}
        local_machines: List[Optional[str]] = []
        verdicts: List[Tuple[NodeProcess, Optional[bool]]] = []
        for node in dataflow.nodes:
            here = _is_here(node, deployed, local_machines)
            verdicts.append((node, here))
        for node, here in verdicts:
            node.machine = node.machine or deployed.get(node.id)
            gone_elsewhere = (
                here is None
                and node.machine is not None
                and bool(local_machines)
                and node.machine not in local_machines
            )
            if here is False or gone_elsewhere:
                mark_remote(node, remote_reason(node.machine))


def _is_here(
    node: NodeProcess, deployed: Dict[str, str], local_machines: List[Optional[str]]
) -> Optional[bool]:
    """True: the node's process is here; False: dora's PID is another process here; None:
    cannot tell (no PID, or no such process here: it exited, or runs on another machine,
    which the machine of a sibling node decides)."""
    if node.pid is None:
        return None
    environ = _environ(node.pid)
    if environ is None:
        return None
    if environ is _UNREADABLE:
        return True  # not ours to read: as before, trust dora's PID
    config, value = node_config(environ)
    same_dataflow = str(value.get("dataflow_id")) == node.dataflow or len(node.dataflow) != 36
    if str(value.get("node_id")) != node.id or not same_dataflow:
        return False
    if "deploy" in config and not deployed:  # every node's config holds the whole dataflow
        deployed.update(_deployments(value))
    node.machine = node.machine or environ.get("DORA_MACHINE_ID") or daemon_machine(node.pid)
    local_machines.append(node.machine)
    return True


def mark_remote(node: NodeProcess, reason: str) -> None:
    node.remote = True
    node.sample_pid = None
    node.skip_reason = reason


def restrict_to_machine(dataflow: Dataflow, machine: str) -> None:
    """``inspect --machine ID``: only that machine's nodes are sampled and watched here."""
    known = sorted({n.machine for n in dataflow.nodes if n.machine})
    if machine not in known:
        raise DoctorError(
            f"--machine {machine}: no node of {dataflow.label} runs on it"
            + (f" (its machines: {', '.join(known)})" if known else " (no node names a machine)")
        )
    for node in dataflow.nodes:
        if node.machine != machine:
            mark_remote(node, remote_reason(node.machine).replace(REMOTE, f"{REMOTE} here", 1))
