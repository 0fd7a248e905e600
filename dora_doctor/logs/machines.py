"""Which machine a log file or a log line speaks of: dora names machines in daemon log file
names, in the daemon's spawn lines and in the coordinator's deploy lines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Optional, Tuple

_DAEMON_LOG = re.compile(r"^dora-daemon-(?P<machine>.+?)\.txt(?:\.gz)?$")


_DAEMON_ID = re.compile(r'machine_id: Some\(\\*"(?P<machine>[^"\\]+)\\*"\)')


_SPAWN = "triggered dataflow spawn"


_NODE_IN_DESCRIPTOR = re.compile(r'Node \{ id: NodeId\(\\*"(?P<node>[^"\\]+)\\*"\)')


_DEPLOY_MACHINE = re.compile(r'deploy: Some\(Deploy \{ machine: Some\(\\*"(?P<machine>[^"\\]+)')


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


_SPAWN_DATAFLOW = re.compile(rf"dataflow spawn `(?P<dataflow>{_UUID})`")


def machine_of_log(path: Path) -> Optional[str]:
    """``dora-daemon-B.txt`` was written by the daemon of machine B.

    A node log (``<daemon dir>/_work/<session>/out/<uuid>/log_<node>.jsonl``) belongs to the
    daemon whose ``out/dora-daemon-<ID>.txt`` sits beside that ``_work`` folder.
    """
    found = _DAEMON_LOG.match(path.name)
    if found:
        return found["machine"]
    for parent in path.parents:
        if parent.name == "_work":
            logs = sorted((parent.parent / "out").glob("dora-daemon-*.txt*"))
            named = [m for m in (_DAEMON_LOG.match(p.name) for p in logs) if m]
            return named[0]["machine"] if len(named) == 1 else None
    return None


def machine_in_line(line: str) -> Optional[str]:
    """A daemon names its own machine in its spans: ``DaemonId { machine_id: Some("B") }``."""
    found = _DAEMON_ID.search(line) if "machine_id: Some" in line else None
    return found["machine"] if found else None


def deployments_in_line(line: str) -> Tuple[Optional[str], Dict[str, str]]:
    """(dataflow, node → machine) from the coordinator's ``triggered dataflow spawn`` line,
    whose span holds the dataflow descriptor with each node's ``deploy``."""
    if _SPAWN not in line:
        return None, {}
    dataflow = _SPAWN_DATAFLOW.search(line)
    found: Dict[str, str] = {}
    starts = list(_NODE_IN_DESCRIPTOR.finditer(line))
    for index, start in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(line)
        machine = _DEPLOY_MACHINE.search(line, start.end(), end)
        if machine:
            found.setdefault(start["node"], machine["machine"])
    return (dataflow["dataflow"] if dataflow else None), found
