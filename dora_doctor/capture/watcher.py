"""``watch``: follow every dataflow the coordinator starts, and leave one recording and one
history entry per shutdown, without anyone at the keyboard.

Each dataflow is followed by its own ``dora-doctor inspect UUID --record FILE`` child process,
started as soon as ``dora list`` / ``node list`` show it running with every local node's PID:
the same sampling, log following and process watch as ``inspect``, but with a light baseline
until a stop begins (stacks only at ``--baseline-rate``, never pausing a node, /proc CPU every
2 s: the moments before a stop are in the recording) and full rate from dora's stop line or a
node's exit on (``inspect --baseline-rate``; the costs are in bench/watch_parts.py). When
the child ends (the dataflow's processes are gone), the watcher diagnoses the recording
exactly as ``report`` would and adds the stop to the history. A recording in which no stop or
end was seen (the watch itself was ended while the dataflow ran on) is deleted, not kept as a
stop.

A child runs in its own session, so a Ctrl-C at the terminal reaches only the watcher, which
then lets the stops in progress finish and ends the followers of dataflows that still run.

One node can stop while its dataflow runs on (``dora node stop``, ``dora node restart``, a
restart policy, a health-check kill, a node that ends by itself). The watcher sees the node's
process gone while ``dora list`` still shows the dataflow running and no stop of the dataflow
was logged; it waits for dora's lines (and for a new process of the node, which makes it a
restart), then records that node's stop as its own history entry from the follower's
recording so far (:func:`~dora_doctor.history.entries.node_view`). A restarted node gets its
own follower (``inspect --node``) for its new process. The dataflow's own end is recorded
once every follower of it has ended, as one entry without the nodes already recorded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Set, Tuple

import psutil

from dora_doctor.capture import lifeline
from dora_doctor.capture.spawns import SpawnSignal
from dora_doctor.dora.client import DoraCli
from dora_doctor.dora.discover import (
    dataflows_from_environ,
    discover,
    parse_node_config,
    process_running,
)
from dora_doctor.errors import DoctorError
from dora_doctor.executables import option_value
from dora_doctor.history import store
from dora_doctor.logs import events as logevents
from dora_doctor.model import Dataflow

if TYPE_CHECKING:
    from dora_doctor.recording.model import Recording

# How long a follower may take to end after the watcher asked it to (Ctrl-C)
FOLLOWER_END_S = 30.0
# A dataflow is followed from when `dora list` shows it, in any status but an end: 1.1.0's
# CLI lists Running, Finished, Failed (a dataflow still spawning, even one whose node never
# connects, is already Running); newer lines add states before Running (pending, building,
# spawning) and Stopping, whose processes run too.
ENDED = ("finished", "failed", "succeeded", "stopped")


def live(status: Optional[str]) -> bool:
    """Not ended: its node processes may run (an unknown status counts as running)."""
    return (status or "running").lower() not in ENDED


# After a node's process is gone while its dataflow runs: dora's lines about it (the
# coordinator's node stop/restart, the daemon's exit line) and the follower's last samples
# land within this long...
NODE_LINGER_S = 3.0
# ...and a restart policy's new process within this long (restart_delay is often 0.5-2 s; a
# later restart is recorded as the node's end, and its new process is not followed)
RESTART_WAIT_S = 8.0
# While dora is down: `dora status` (is a daemon back?) at most this often
DOWN_CHECK_S = 3.0
# `dora list` at least this often, for what /proc cannot show (capture/spawns.py)
BACKSTOP_S = 60.0


@dataclass
class WatchOptions:
    db: Optional[Path] = None
    rate: int = 100  # through a shutdown
    segment_s: int = 1
    baseline_rate: int = 1  # until a stop begins: stacks only, never pausing a node
    poll_s: float = 1.0
    machine: Optional[str] = None
    dora_args: List[str] = field(default_factory=list)  # --dora, --coordinator-*
    recordings: Optional[Path] = None  # default: next to the history DB


@dataclass
class Follower:
    dataflow: Dataflow
    recording: Path
    proc: "subprocess.Popen[bytes]"
    started: float = field(default_factory=time.time)
    node: Optional[str] = None  # the restarted node this follower samples alone
    pids: Dict[str, int] = field(default_factory=dict)  # node → the process followed
    gone: Dict[str, float] = field(default_factory=dict)  # node → when its process went
    handled: Set[str] = field(default_factory=set)  # nodes whose own stop is recorded
    # nodes whose end was the start of the dataflow's own stop: its entry, not looked at again
    stopping: Set[str] = field(default_factory=set)
    kept: bool = False  # a node's own stop points at this recording: never delete it
    # its child has ended and the nodes it left were looked at once (see Watcher._reap)
    settled: bool = False

    @property
    def accounted(self) -> Set[str]:
        """Nodes whose end is known to be their own stop or the dataflow's."""
        return self.handled | self.stopping


def _status(row: Dict[str, object]) -> Optional[str]:
    value = row.get("status")
    return str(value) if value is not None else None


def safe_label(text: str) -> str:
    """A dataflow's name in a file name: it comes from the target, keep it tame."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:40].strip("._") or "dataflow"


class Watcher:
    def __init__(self, cli: DoraCli, options: WatchOptions, say: Callable[[str], None]) -> None:
        self.cli = cli
        self.options = options
        self.say = say
        self.db = options.db or store.default_path()
        self.folder = options.recordings or store.recordings_dir(self.db)
        self.followers: Dict[str, Follower] = {}
        self.seen: set = set()  # type: ignore[type-arg]
        self.stops_recorded = 0
        self.coordinator_ok: Optional[bool] = None
        self.running: Set[str] = set()  # dataflows `dora list` showed running, last poll
        # rows of followers that ended while another follower of the same dataflow runs
        self.parked: Dict[str, List[store.StopRow]] = {}
        self.last_stop: Optional[str] = None
        # since when dora (daemon or coordinator) is known gone, and what was seen: said on
        # the status line until a daemon answers again or a new dataflow is followed
        self.down: Optional[Tuple[float, str]] = None
        self.spawns: Optional[SpawnSignal] = None  # made at the first poll
        # the local coordinator's process, once found: its end is noticed at the next poll
        # (one stat), not at the `dora list` backstop
        self.coordinator_pid: Optional[int] = None
        self.asked_status = 0.0  # time.monotonic() of the last `dora status` while down
        self.pending = True  # a dataflow `dora list` showed is not followed yet
        self.listed = 0.0  # time.monotonic() of the last `dora list`
        # node PID → alive, as found in this poll: each followed node is looked at once a poll
        self._alive: Dict[int, bool] = {}
        self.ending = False  # finish(): followers of running dataflows are asked to end

    def poll(self) -> None:
        """One look at the coordinator: follow new dataflows, finish ended followers."""
        self._alive = {}
        self._reap()
        self._check_back()
        # `dora list` (~40 ms of CPU) only when a process dora spawned says there may be
        # something new, while a dataflow seen is not followed yet, when a followed node's
        # process is gone (does its dataflow run on: a node stop?), or every BACKSTOP_S
        now = time.monotonic()
        if self.spawns is None:
            self.spawns = SpawnSignal(self.cli.port())
        if (
            self.spawns.changed()
            or self.pending
            or self.coordinator_ok is False  # retry each poll until it answers again
            or self._coordinator_ended()
            or self._a_node_gone()
            or now >= self.listed + BACKSTOP_S
        ):
            self.listed = now
            self._list()
        self._watch_nodes()

    def _coordinator_ended(self) -> bool:
        """The local coordinator's process (found after a `dora list` answered) has ended."""
        if self.coordinator_pid is None or process_running(self.coordinator_pid):
            return False
        self.coordinator_pid = None
        return True

    def _find_coordinator(self) -> None:
        """``dora coordinator`` on this machine listening on the port the CLI uses (1.x
        ``--port``, 0.3-0.5 ``--control-port``; dora's default when none is set); None when
        it runs elsewhere or cannot be read."""
        try:
            port = self.cli.port()
        except AttributeError:  # a Watcher built without a CLI (unit tests)
            return
        for proc in psutil.process_iter(["pid", "cmdline"]):
            args = proc.info.get("cmdline") or []
            if not any(os.path.basename(a) == "dora" for a in args[:2]):
                continue
            if "coordinator" not in args[1:3]:
                continue
            given = option_value(args, "--control-port") or option_value(args, "--port")
            if given == (str(port) if port is not None else None):
                self.coordinator_pid = int(proc.info["pid"])
                return

    def _a_node_gone(self) -> bool:
        """A followed node's process has ended and is not accounted for yet."""
        return any(
            node in follower.gone or (node not in follower.accounted and not self._running(pid))
            for follower in self.followers.values()
            for node, pid in follower.pids.items()
        )

    def _running(self, pid: int) -> bool:
        """``process_running``, read once per poll for each PID."""
        alive = self._alive.get(pid)
        if alive is None:
            alive = self._alive[pid] = process_running(pid)
        return alive

    def _list(self) -> None:
        """`dora list`: which dataflows run; follow the new ones."""
        try:
            # the full discovery (node list, processes, Python versions: ~5 × the CPU)
            # only when a dataflow not seen before runs
            rows = self.cli.list_dataflows()
            fresh = [
                row for row in rows if str(row.get("uuid")) not in self.seen and live(_status(row))
            ]
            self.pending = any(
                str(row.get("uuid")) not in self.seen and live(_status(row)) for row in rows
            )
            found = discover(self.cli, ask_version=False) if fresh else None
        except DoctorError as err:
            if self.coordinator_ok is not False:
                self.say(f"cannot list dataflows ({err}); retrying")
            self.coordinator_ok = False
            self.running = set()
            self.pending = True  # ask again next poll, not at the backstop
            return
        self.running = {str(row.get("uuid")) for row in rows if live(_status(row))}
        if self.coordinator_ok is False:
            self.say("the coordinator answers again")
        self.coordinator_ok = True
        if self.coordinator_pid is None:
            self._find_coordinator()
        if self.down is not None and fresh:
            self.say("dora is back: a new dataflow runs; following it")
            self.down = None
        for dataflow in found.dataflows if found is not None else []:
            if dataflow.uuid in self.seen:
                continue
            if not live(dataflow.status):
                continue
            local = [n for n in dataflow.nodes if not n.remote]
            if not local or any(n.pid is None for n in local):
                continue  # still spawning: next poll
            self._follow(dataflow)

    def _follow(
        self, dataflow: Dataflow, node: Optional[str] = None, pid: Optional[int] = None
    ) -> None:
        self.seen.add(dataflow.uuid)
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        label = safe_label(dataflow.label) + (f"-{safe_label(node)}" if node else "")
        path = self.folder / f"{stamp}-{label}-{dataflow.uuid[:8]}.ddrec"
        for n in range(2, 100):  # a node restarted twice in one second
            if not path.exists():
                break
            path = path.with_name(f"{stamp}-{label}-{dataflow.uuid[:8]}-{n}.ddrec")
        args = [
            sys.executable,
            "-m",
            "dora_doctor",
            "--no-color",
            "inspect",
            dataflow.uuid,
            "--record",
            str(path),
            "--rate",
            str(self.options.rate),
            "--segment",
            str(self.options.segment_s),
            "--baseline-rate",
            str(self.options.baseline_rate),
            "--nonblocking",
            "--no-history",
            "--json",
            *self.options.dora_args,
        ]
        if self.options.machine:
            args += ["--machine", self.options.machine]
        if node is not None:
            args += ["--node", node]
        log = open(path.with_suffix(".log"), "wb")  # noqa: SIM115 (the child owns it)
        try:
            proc = subprocess.Popen(
                args,
                env={**os.environ, lifeline.ENV: str(os.getpid())},  # ends with this watch
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        if node is not None and pid is not None:
            pids = {node: pid}
        else:
            pids = {
                n.id: found
                for n in dataflow.nodes
                if not n.remote and (found := n.sample_pid or n.pid) is not None
            }
        key = dataflow.uuid if node is None else f"{dataflow.uuid}/{node}/{path.name}"
        self.followers[key] = Follower(dataflow, path, proc, node=node, pids=pids)
        if node is not None:
            self.say(
                f"following {dataflow.label}: node {node} restarted (pid {pids.get(node)}); "
                f"recording to {path}"
            )
            return
        if self.spawns is not None:  # the processes dora spawned (a wrapper's, not Python's)
            self.spawns.adopt(n.pid for n in dataflow.nodes if n.pid is not None)
        python = sum(1 for n in dataflow.nodes if n.sample_pid)
        self.say(
            f"following {dataflow.label} ({dataflow.uuid}): {len(dataflow.nodes)} nodes, "
            f"{python} Python; recording to {path}"
        )

    def _watch_nodes(self) -> None:
        """Nodes whose process is gone while their dataflow runs on: each one's own stop."""
        now = time.time()
        listed: Optional[Dict[str, int]] = None
        for follower in list(self.followers.values()):
            if follower.dataflow.uuid not in self.running:
                # the dataflow's end (or unknown): the follower's job, once its recording
                # is whole; a node dora was asked to stop or restart alone just before the
                # dataflow's stop is still its own stop
                if follower.gone and follower.proc.poll() is not None:
                    self._asked_alone(follower)
                    follower.gone.clear()
                continue
            self._mark_gone(follower, now)
            for node, when in sorted(follower.gone.items()):
                if now < when + NODE_LINGER_S:
                    continue
                if listed is None:
                    listed = self._node_pids(follower.dataflow.uuid)
                new = listed.get(node)
                if new is not None and not self._is_node(new, follower.dataflow.uuid, node):
                    new = self._find_node(follower.dataflow.uuid, node)
                restarted = new if new is not None and new != follower.pids[node] else None
                if restarted is None and now < when + RESTART_WAIT_S:
                    continue
                del follower.gone[node]
                follower.handled.add(node)
                if self._record_node(follower, node, restarted is not None) and restarted:
                    self._follow(follower.dataflow, node, restarted)

    def _asked_alone(self, follower: Follower) -> None:
        """Record the own stop of each gone node that dora's log says was asked to stop or
        restart alone (``dora node stop``/``restart``) before its dataflow ended."""
        from dora_doctor.recording.reader import read_recording

        try:
            text = follower.recording.read_bytes()  # most ends have no such line: no parse
            if not any(f'"{kind}"'.encode() in text for kind in logevents.NODE_REQUESTS):
                return
            recording = read_recording(follower.recording)
        except (DoctorError, OSError):
            return
        asked = {
            e.node
            for e in recording.logs
            if e.kind in logevents.NODE_REQUESTS and e.dataflow in (None, follower.dataflow.uuid)
        }
        for node in sorted(set(follower.gone) & asked):
            follower.handled.add(node)
            self._record_node(follower, node, restarted=False)  # its own, if it came first

    def _mark_gone(self, follower: Follower, now: Optional[float] = None) -> bool:
        """Note when each of the follower's nodes not accounted for has ended; True if any
        has, while its dataflow runs (as last listed: the next `dora list` confirms it)."""
        if follower.dataflow.uuid not in self.running:
            return False
        when = time.time() if now is None else now
        for node, pid in follower.pids.items():
            if node not in follower.accounted and node not in follower.gone:
                if not self._running(pid):
                    follower.gone[node] = when
        return bool(follower.gone)

    def _node_pids(self, uuid: str) -> Dict[str, int]:
        """node → PID of one dataflow now (``dora node list``: only when a node's gone)."""
        try:
            rows = self.cli.list_nodes()
        except DoctorError:
            return {}
        pids: Dict[str, int] = {}
        for row in rows:
            if str(row.get("dataflow")) not in (uuid, self._name_of(uuid)):
                continue
            try:
                pid = int(str(row.get("pid")))
            except ValueError:
                continue
            if pid > 0:
                pids[str(row.get("node"))] = pid
        return pids

    @staticmethod
    def _is_node(pid: int, uuid: str, node: str) -> bool:
        """The process says (DORA_NODE_CONFIG) it is this node: a PID from ``node list`` is
        checked against the process before it is followed (it may have ended and been
        reused by then)."""
        try:
            config = psutil.Process(pid).environ().get("DORA_NODE_CONFIG")
        except (psutil.Error, OSError):
            return False
        return bool(config) and parse_node_config(config or "") == (uuid, node)

    @staticmethod
    def _find_node(uuid: str, node: str) -> Optional[int]:
        """The node's process by its environment, when dora's PID for it is not it."""
        for dataflow in dataflows_from_environ(psutil.process_iter()):
            if dataflow.uuid == uuid:
                for found in dataflow.nodes:
                    if found.id == node and found.pid and process_running(found.pid):
                        return found.pid
        return None

    def _name_of(self, uuid: str) -> Optional[str]:
        follower = next((f for f in self.followers.values() if f.dataflow.uuid == uuid), None)
        return follower.dataflow.name if follower else None

    def _record_node(self, follower: Follower, node: str, restarted: bool) -> bool:
        """One node's own stop, from its follower's recording so far; False if it was the
        start of the dataflow's own stop after all (left for the dataflow's entry)."""
        from dora_doctor.analysis import diagnose
        from dora_doctor.history import entries
        from dora_doctor.recording.reader import read_recording

        label = follower.dataflow.label
        try:
            recording = read_recording(follower.recording)
        except DoctorError as err:
            self.say(f"{label}: node {node}: no readable recording ({err})")
            return False
        exits = [e.time for e in recording.events if e.node == node and e.kind == "exited"] or [
            follower.started
        ]
        requests = [
            e.time
            for e in recording.logs
            if e.kind == logevents.STOP_REQUEST
            and e.dataflow in (None, follower.dataflow.uuid)
            and e.time is not None
        ]
        if requests and min(requests) <= max(exits):
            follower.handled.discard(node)  # the dataflow is stopping: its entry
            follower.stopping.add(node)
            return False
        view = entries.node_view(recording, node)
        view.dataflows[0].name = view.dataflows[0].name or follower.dataflow.name
        report = diagnose.report_from_recording(view)
        kind = entries.node_kind(view, node, restarted)
        rows = entries.node_stop_rows(view, report, node, kind, "watch", follower.recording)
        if not rows:
            self.say(f"{label}: node {node} ended; nothing to record")
            return restarted
        follower.kept = True
        self._write(label, rows, follower.recording, f"{kind} of {node}")
        return True

    def _reap(self, final: bool = False) -> None:
        for key, follower in list(self.followers.items()):
            if follower.proc.poll() is None or follower.gone:
                continue
            if not final and not follower.settled:
                # The child ends a moment after its last node's exit, which can come before
                # this watch has seen that exit: a node restarted while its dataflow runs
                # on would be taken for the dataflow's end, and its stop lost. Such exits
                # go through the node path first (which leaves a stop of the dataflow, when
                # dora logged one, to the record below).
                follower.settled = True
                if self._mark_gone(follower):
                    continue
            del self.followers[key]
            self._record(follower)

    def _record(self, follower: Follower) -> None:
        from dora_doctor.analysis import diagnose
        from dora_doctor.history import entries
        from dora_doctor.recording.reader import read_recording

        label = follower.dataflow.label
        try:
            recording = read_recording(follower.recording)
        except DoctorError as err:
            log = follower.recording.with_suffix(".log")
            self.say(f"{label}: no readable recording ({err}); see {log}")
            return
        recording.dataflows[0].name = recording.dataflows[0].name or follower.dataflow.name
        for handled in follower.handled:  # recorded on their own: not part of this end
            recording = entries.without_node(recording, handled)
        report = diagnose.report_from_recording(recording)
        rows = entries.stops_from(recording, report, "watch", follower.recording)
        uuid = follower.dataflow.uuid
        parked = self.parked.setdefault(uuid, [])
        parked.extend(rows)
        left = sorted(set(follower.pids) - follower.accounted)
        early = not rows and bool(left) and uuid in self.running and not self.ending
        if early:  # its nodes run on unfollowed: the user must hear it, and keep the why
            self.say(
                f"{label}: stopped following {', '.join(left)} with no stop seen while the "
                f"dataflow runs; see {follower.recording.with_suffix('.log')}"
            )
        if not rows and not follower.kept:
            follower.recording.unlink()
            if not early:
                follower.recording.with_suffix(".log").unlink(missing_ok=True)
        if any(f.dataflow.uuid == uuid for f in self.followers.values()):
            return  # another follower of this dataflow (a restarted node) still runs
        rows = entries.merge_stops(self.parked.pop(uuid))
        if any(row.kind == entries.DORA_DOWN for row in rows):
            self._went_down(label, recording)
        if not rows:
            if follower.node is None:
                self.say(f"{label}: no stop seen while followed; nothing recorded")
            return
        self._write(label, rows, follower.recording, rows[0].kind)

    def _went_down(self, label: str, recording: "Recording") -> None:
        """dora went away under a followed dataflow: say it once, plainly, and keep watching
        (the watch never touches the nodes left behind: dora no longer stops or reaps them)."""
        what = {
            logevents.DAEMON_GONE: "dora's daemon exited",
            logevents.COORDINATOR_GONE: "dora's coordinator exited",
            logevents.DAEMON_LEFT: "the coordinator lost every daemon",
        }
        kinds = {e.kind for e in recording.logs}
        # what the follower saw of the processes first, then the coordinator's word
        said = next((what[k] for k in what if k in kinds), "dora went away")
        self.down = (time.time(), said)
        self.say(
            f"{label}: {said} while it ran; the watch goes on and follows the dataflows of "
            "the next dora that comes up (same coordinator address)"
        )

    def _check_back(self) -> None:
        """While dora is known down: a daemon that answers again (``dora status``, 1.x) ends
        the notice; older lines have no such call, a new dataflow ends it there."""
        if self.down is None or self.followers:
            return
        now = time.monotonic()
        if now < self.asked_status + DOWN_CHECK_S:
            return
        self.asked_status = now
        try:
            if not self.cli.line().has_status:
                return
            result = self.cli.run(["status", "--format", "json", *self.cli.connection_args()])
        except DoctorError:
            return
        try:
            report = json.loads(result.stdout)
        except ValueError:
            return
        daemon = report.get("daemon") if isinstance(report, dict) else None
        if isinstance(daemon, dict) and daemon.get("status") == "running":
            self.say("dora's daemon answers again; following its dataflows")
            self.down = None

    def _write(self, label: str, rows: List[store.StopRow], path: Path, kind: str) -> None:
        from dora_doctor.history import write

        added = write.add_stops(rows, self.db)
        self.stops_recorded += added or 0
        nodes = ", ".join(
            f"{n.node} {n.outcome or 'unknown'}"
            + (
                f" {'≥ ' if n.censored else ''}{n.stop_to_exit_s:.2f} s"
                if n.stop_to_exit_s is not None
                else ""
            )
            + (f" ({n.cause})" if n.cause and n.cause != "none" else "")
            for row in rows
            for n in row.nodes
        )
        where = {
            None: "recording kept, the history could not be written",
            0: "already in the history",
        }.get(added, "recorded")
        self.last_stop = f"{label}: {kind} {where}"
        self.say(f"{label}: {kind} {where}: {nodes}; {path}")

    def finish(self, timeout_s: float = FOLLOWER_END_S) -> None:
        """End cleanly: stops in progress run to their end; followers of dataflows that still
        run are asked to end (SIGINT, as Ctrl-C ends `inspect`)."""
        self.ending = True
        running = set()
        try:
            found = discover(self.cli, ask_version=False)
            running = {d.uuid for d in found.dataflows if live(d.status)}
        except DoctorError:
            pass
        for follower in self.followers.values():
            if follower.dataflow.uuid in running and follower.proc.poll() is None:
                follower.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for follower in list(self.followers.values()):
            left = max(0.1, deadline - time.monotonic())
            try:
                follower.proc.wait(left)
            except subprocess.TimeoutExpired:
                follower.proc.send_signal(signal.SIGINT)
                try:
                    follower.proc.wait(5.0)
                except subprocess.TimeoutExpired:
                    follower.proc.kill()
                    follower.proc.wait()
        for follower in self.followers.values():
            follower.gone.clear()  # no more waiting for restarts: the watch is ending
        self._reap(final=True)

    def status(self) -> str:
        """One line for the live status: what is followed, what was recorded. It holds
        names from the target: the caller escapes it for the terminal."""
        flows = {f.dataflow.uuid for f in self.followers.values()}
        nodes = sum(len(f.pids) - len(f.handled) for f in self.followers.values())
        line = (
            f"following {len(flows)} dataflow(s), {nodes} node(s); "
            f"{self.stops_recorded} stop(s) recorded"
        )
        if self.coordinator_ok is False:
            line += "; THE COORDINATOR DOES NOT ANSWER (retrying)"
        if self.down is not None:
            since = time.strftime("%H:%M:%S", time.localtime(self.down[0]))
            line += f"; DORA DOWN since {since} ({self.down[1]}), waiting for it"
        return line + (f"; last: {self.last_stop}" if self.last_stop else "")

    def run(
        self,
        until: Optional[Callable[[], bool]] = None,
        on_poll: Optional[Callable[[], None]] = None,
    ) -> None:
        """Poll until Ctrl-C/SIGTERM (KeyboardInterrupt) or ``until()``; then finish.
        ``on_poll`` runs after each poll (the live status line)."""
        try:
            while until is None or not until():
                began = time.monotonic()
                self.poll()
                if on_poll is not None:
                    on_poll()
                time.sleep(max(0.05, self.options.poll_s - (time.monotonic() - began)))
        except KeyboardInterrupt:
            self.say(
                f"ending: {len(self.followers)} follower(s) to finish "
                "(stops in progress run to their end)"
            )
        self.finish()


def systemd_unit(argv: List[str], user: Optional[str] = None) -> str:
    """A unit file that runs this watch as a service, restarted if it fails."""
    import shlex

    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "dora_doctor", *argv])
    return "\n".join(
        [
            "[Unit]",
            "Description=dora-doctor watch: record every dora dataflow shutdown on this machine",
            "After=network-online.target",
            "",
            "[Service]",
            f"ExecStart={command}",
            "Environment=NO_COLOR=1 PYTHONUNBUFFERED=1",
            *([f"User={user}"] if user else []),
            "Restart=on-failure",
            "RestartSec=5",
            "# SIGTERM ends it like Ctrl-C: the stop in progress is recorded first",
            "KillSignal=SIGTERM",
            "KillMode=mixed",
            "TimeoutStopSec=90",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )
