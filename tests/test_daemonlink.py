"""Has a node called Node()? Its connection to the daemon, read from /proc (capture/daemonlink).

The table lines are /proc/PID/net/tcp of a node on dora 0.4.1 (2026-12-02): the node waiting
in Node() for its peer held two connections to the daemon's node port (0x82C7 = 33479). The
live tests use this test process's own sockets: a real connection, read back from /proc.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from dora_doctor.capture.daemonlink import (
    DaemonLinkTracker,
    connected,
    connections_to,
    parse_address,
)
from dora_doctor.dora.machines import daemon_address, load_config
from dora_doctor.model import DAEMON_CONNECTED, DAEMON_NOT_CONNECTED, NodeProcess

FIXTURES = Path(__file__).resolve().parent / "fixtures"
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode"
)
TABLE_041 = "\n".join(
    [
        HEADER,
        "   7: 0100007F:A85A 0100007F:82C7 01 00000000:00000000 00:00000000 00000000     0"
        "        0 2281871 1 00000000a73c8adf 20 4 21 18 -1",
        "   8: 0100007F:A86A 0100007F:82C7 01 00000000:00000000 00:00000000 00000000     0"
        "        0 2281872 1 000000006228dcae 20 4 28 12 -1",
        "   9: 0100007F:82C7 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
        "        0 2281800 1 0000000000000000 100 0 0 10 0",
        "  10: 0100007F:A876 0100007F:BE29 01 00000000:00000000 00:00000000 00000000     0"
        "        0 2282836 1 00000000330c7220 20 4 28 12 -1",
    ]
)
DAEMON_041 = (ipaddress.ip_address("127.0.0.1"), 0x82C7)


def test_the_established_connections_to_the_daemon_port_are_found() -> None:
    # the listening socket (state 0A) and a connection to another port are not the node's link
    assert connections_to(TABLE_041, DAEMON_041) == {"2281871", "2281872"}


def test_a_daemon_on_an_unspecified_address_is_matched_by_port() -> None:
    anywhere = (ipaddress.ip_address("0.0.0.0"), 0x82C7)
    assert connections_to(TABLE_041, anywhere) == {"2281871", "2281872"}


def test_an_ipv4_mapped_ipv6_row_is_the_ipv4_address() -> None:
    row = (
        "   0: 0000000000000000FFFF00000100007F:A85A 0000000000000000FFFF00000100007F:82C7 01 "
        "00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 21 18 -1"
    )
    assert connections_to(HEADER + "\n" + row, DAEMON_041) == {"4242"}


@pytest.mark.parametrize(
    "line",
    [
        "garbage",
        "   7: 0100007F:A85A 0100007F 01 0 0 0 0 0 1",
        "   7: 0100007F:A85A 0100007F:82C7 01 0 0 0 0",
        "   7: 0100007F:A85A ZZZZZZZZ:82C7 01 0 0 0 0 0 1",
        "   7: 0100007F:A85A 0100007F:XYZW 01 0 0 0 0 0 1",
        "\x1b[2J" * 100,
    ],
)
def test_broken_table_lines_are_skipped(line: str) -> None:
    assert connections_to(HEADER + "\n" + line, DAEMON_041) == set()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:36687", ("127.0.0.1", 36687)),
        ("[::1]:6012", ("::1", 6012)),
        ("127.0.0.1:0", None),
        ("127.0.0.1:70000", None),
        ("localhost:36687", None),
        ("127.0.0.1", None),
        ("", None),
        (None, None),
        ("1" * 100 + ":1", None),
    ],
)
def test_addresses_from_a_node_config(text: object, expected: object) -> None:
    found = parse_address(text)  # type: ignore[arg-type]
    assert (None if found is None else (str(found[0]), found[1])) == expected


def test_the_daemon_address_comes_from_the_tcp_transport_of_dora_node_config() -> None:
    config = load_config((FIXTURES / "dora-1.1.0" / "DORA_NODE_CONFIG.yaml").read_text())
    assert daemon_address(config) == "127.0.0.1:36687"
    shmem = {"daemon_communication": {"daemon_control_region_id": "x"}}
    assert daemon_address(shmem) is None
    assert daemon_address({"daemon_communication": {"socket_addr": ["not", "text"]}}) is None
    assert daemon_address({}) is None


@pytest.fixture
def listener() -> Iterator[Tuple[socket.socket, str]]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    host, port = server.getsockname()
    yield server, f"{host}:{port}"
    server.close()


@contextlib.contextmanager
def _client(server: socket.socket) -> Iterator[socket.socket]:
    """A real connection from this process to ``server``, closed afterwards."""
    client = socket.create_connection(server.getsockname()[:2])
    try:
        yield client
    finally:
        client.close()


@linux
def test_this_process_connected_or_not_as_proc_says(listener: Tuple[socket.socket, str]) -> None:
    server, address = listener
    target = parse_address(address)
    assert target is not None
    assert connected(os.getpid(), target) is False  # only listening
    with _client(server):
        assert connected(os.getpid(), target) is True


@linux
def test_another_process_holding_the_connection_is_not_this_one(
    listener: Tuple[socket.socket, str],
) -> None:
    # the accepted end sits in the table as a connection *from* the daemon's port, and the
    # client end is ours: a second process's table row must not count for a pid without it
    server, address = listener
    target = parse_address(address)
    assert target is not None
    with _client(server):
        assert connected(os.getppid(), target) is not True


@linux
def test_the_tracker_reports_the_first_read_then_the_connection_then_stops_reading(
    listener: Tuple[socket.socket, str],
) -> None:
    server, address = listener
    node = NodeProcess("n", "df", pid=os.getpid(), sample_pid=os.getpid(), daemon_addr=address)
    other = NodeProcess("shm", "df", pid=os.getpid(), sample_pid=os.getpid())
    tracker = DaemonLinkTracker([node, other])
    first = tracker.poll(node, 1.0)
    assert first is not None and first.kind == DAEMON_NOT_CONNECTED and first.detail == address
    assert tracker.poll(node, 1.1) is None  # unchanged
    with _client(server):
        change = tracker.poll(node, 1.2)
        assert change is not None and change.kind == DAEMON_CONNECTED and change.time == 1.2
    assert tracker.poll(node, 1.3) is None  # connected once is Node() called: not read again
    assert tracker.poll(other, 1.0) is None  # no TCP address: never read


def test_the_connection_records_are_facts_not_sampler_errors_in_the_live_table() -> None:
    """inspect's live view said "node X is not sampled: 127.0.0.1:45043" for each connection
    record (seen on a new user's dataflow): they are facts for the analysis only."""
    from dora_doctor.capture.session import LiveState, NodeLive
    from dora_doctor.model import Dataflow, ProcessEvent

    node = NodeProcess("n", "df", pid=7, python=True)
    state = LiveState(Dataflow("df", "flow", nodes=[node]), "1.1.0")
    state.nodes[node.id] = NodeLive(node, state="sampling")
    for kind in (DAEMON_NOT_CONNECTED, DAEMON_CONNECTED):
        state.update(ProcessEvent("df", "n", 7, 1.0, kind, "127.0.0.1:45043"))
    assert state.notices == [] and state.nodes["n"].state == "sampling"
