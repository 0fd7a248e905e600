"""Whether each node's process has connected to its dora daemon yet: ``Node()`` was called.

A node before ``Node()`` (a slow import, a model loaded in ``main()``) cannot get STOP, and
the right answer for it is "still starting", not "stuck". Thread names tell that on release
lines whose ``Node()`` starts named native threads at once (:mod:`dora_doctor.dora.versions`),
but on 0.4.x and 0.5.x a node waiting inside ``Node()`` for its peers has no new thread at
all. What every line does in ``Node()`` first is connect to the daemon, at the address the
daemon gave the node in ``DORA_NODE_CONFIG`` (``daemon_communication: !Tcp socket_addr``).
The kernel lists established TCP connections in ``/proc/PID/net/tcp{,6}`` (the process's
network namespace) and the process's sockets in ``/proc/PID/fd``; a connection to that
address held by one of the node's own sockets is the proof. Neither read pauses the node.

So the CPU meter, which polls ``/proc`` every 50 ms while sampling (every 4 s in ``watch``'s
baseline), asks this tracker too, and a ``process`` record is written when the answer
changes: ``daemon-not-connected`` (the first read) and ``daemon-connected``. Once connected a
node is not read again: the connection is what ``Node()`` opens and the node keeps it, so
later reads would only cost. A node whose daemon talks another transport (shared memory, a
Unix socket) has no address here and is never read: its absence of a connection proves
nothing.
"""

from __future__ import annotations

import ipaddress
import os
import time
from typing import Dict, FrozenSet, List, Optional, Set, Tuple, Union

from dora_doctor.model import DAEMON_CONNECTED, DAEMON_NOT_CONNECTED, NodeProcess, ProcessEvent

ESTABLISHED = "01"  # the kernel's TCP_ESTABLISHED, as /proc/net/tcp prints the state
MAX_TABLE = 4 << 20  # bytes of one /proc/net/tcp read: a busy host's table, bounded
MAX_FDS = 65536  # file descriptors looked at in /proc/PID/fd

Endpoint = Tuple[Union[ipaddress.IPv4Address, ipaddress.IPv6Address], int]


def parse_address(text: Optional[str]) -> Optional[Endpoint]:
    """``127.0.0.1:36687`` or ``[::1]:36687`` as (address, port); None for anything else
    (the text comes from a node's environment)."""
    if not text or len(text) > 64:
        return None
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    try:
        return ipaddress.ip_address(host.strip("[]")), int(port)
    except ValueError:
        return None


def _hex_endpoint(field: str) -> Optional[Endpoint]:
    """A ``0100007F:8FCF`` column of /proc/net/tcp (v4) or its 32-hex-digit v6 form: the
    address is the kernel's 32-bit words, each in host (little-endian) byte order."""
    addr, sep, port = field.partition(":")
    if not sep or len(addr) not in (8, 32):
        return None
    try:
        raw = b"".join(bytes.fromhex(addr[i : i + 8])[::-1] for i in range(0, len(addr), 8))
        ip = ipaddress.ip_address(raw)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped, int(port, 16)
        return ip, int(port, 16)
    except ValueError:
        return None


def connections_to(table: str, target: Endpoint) -> Set[str]:
    """The socket inodes of established connections to ``target`` in one /proc/net/tcp{,6}
    table. A daemon listening on an unspecified address (``0.0.0.0``) is matched by port."""
    address, port = target
    inodes: Set[str] = set()
    for line in table.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10 or cols[3] != ESTABLISHED:
            continue
        remote = _hex_endpoint(cols[2])
        if remote is None or remote[1] != port:
            continue
        if address.is_unspecified or remote[0] == address:
            inodes.add(cols[9])
    return inodes


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as table:
            return table.read(MAX_TABLE).decode("ascii", errors="replace")
    except OSError:
        return None


def socket_inodes(pid: int) -> Optional[FrozenSet[str]]:
    """The inodes of the process's sockets, from its /proc/PID/fd links; None if unreadable."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    found = set()
    for name in names[:MAX_FDS]:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue  # closed since the listing
        if link.startswith("socket:["):
            found.add(link[8:-1])
    return frozenset(found)


def connected(pid: int, target: Endpoint) -> Optional[bool]:
    """Does ``pid`` hold an established TCP connection to ``target``? None when /proc cannot
    tell (the process is gone, or its tables are not ours to read)."""
    tables = [_read(f"/proc/{pid}/net/{name}") for name in ("tcp", "tcp6")]
    if tables[0] is None:
        return None
    inodes: Set[str] = set()
    for table in tables:
        inodes |= connections_to(table or "", target)
    if not inodes:
        return False  # the common case while starting: no fd listing needed
    own = socket_inodes(pid)
    return None if own is None else bool(inodes & own)


class DaemonLinkTracker:
    """Remembers each node's last answer and reports changes, until it has connected."""

    def __init__(self, nodes: List[NodeProcess]) -> None:
        self.targets: Dict[str, Endpoint] = {}
        for node in nodes:
            target = parse_address(node.daemon_addr)
            if target is not None:
                self.targets[node.id] = target
        self.last: Dict[str, bool] = {}

    def poll(self, node: NodeProcess, now: Optional[float] = None) -> Optional[ProcessEvent]:
        """The change since the last read of ``node``, as a record; None if unchanged, not
        read (connected already, no TCP address) or unreadable."""
        target = self.targets.get(node.id)
        if target is None or node.sample_pid is None or self.last.get(node.id) is True:
            return None
        answer = connected(node.sample_pid, target)
        if answer is None or self.last.get(node.id) is answer:
            return None
        self.last[node.id] = answer
        return ProcessEvent(
            node.dataflow,
            node.id,
            node.sample_pid,
            time.time() if now is None else now,
            DAEMON_CONNECTED if answer else DAEMON_NOT_CONNECTED,
            node.daemon_addr,
        )
