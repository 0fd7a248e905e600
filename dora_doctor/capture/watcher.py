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
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from dora_doctor.capture.spawns import SpawnSignal
from dora_doctor.dora.client import DoraCli
from dora_doctor.dora.discover import discover
from dora_doctor.errors import DoctorError
from dora_doctor.history import store
from dora_doctor.model import Dataflow

# How long a follower may take to end after the watcher asked it to (Ctrl-C)
FOLLOWER_END_S = 30.0
RUNNING = ("running",)
ENDED = ("finished", "failed", "stopped")
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
        self.spawns: Optional[SpawnSignal] = None  # made at the first poll
        self.pending = True  # a dataflow `dora list` showed is not followed yet
        self.listed = 0.0  # time.monotonic() of the last `dora list`

    def poll(self) -> None:
        """One look at the coordinator: follow new dataflows, finish ended followers."""
        self._reap()
        # `dora list` (~40 ms of CPU) only when a process dora spawned says there may be
        # something new, while a dataflow seen is not followed yet, or every BACKSTOP_S
        now = time.monotonic()
        if self.spawns is None:
            self.spawns = SpawnSignal(self.cli.port())
        if not (self.spawns.changed() or self.pending or now >= self.listed + BACKSTOP_S):
            return
        self.listed = now
        try:
            # the full discovery (node list, processes, Python versions: ~5 × the CPU)
            # only when a dataflow not seen before runs
            rows = self.cli.list_dataflows()
            fresh = [
                row
                for row in rows
                if str(row.get("uuid")) not in self.seen
                and str(row.get("status") or "").lower() in RUNNING
            ]
            self.pending = any(
                str(row.get("uuid")) not in self.seen
                and str(row.get("status") or "").lower() not in ENDED
                for row in rows
            )
            found = discover(self.cli, ask_version=False) if fresh else None
        except DoctorError as err:
            if self.coordinator_ok is not False:
                self.say(f"cannot list dataflows ({err}); retrying")
            self.coordinator_ok = False
            self.pending = True  # ask again next poll, not at the backstop
            return
        if self.coordinator_ok is False:
            self.say("the coordinator answers again")
        self.coordinator_ok = True
        for dataflow in found.dataflows if found is not None else []:
            if dataflow.uuid in self.seen:
                continue
            if (dataflow.status or "").lower() not in RUNNING:
                continue
            local = [n for n in dataflow.nodes if not n.remote]
            if not local or any(n.pid is None for n in local):
                continue  # still spawning: next poll
            self._follow(dataflow)

    def _follow(self, dataflow: Dataflow) -> None:
        self.seen.add(dataflow.uuid)
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{stamp}-{safe_label(dataflow.label)}-{dataflow.uuid[:8]}.ddrec"
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
        log = open(path.with_suffix(".log"), "wb")  # noqa: SIM115 (the child owns it)
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        self.followers[dataflow.uuid] = Follower(dataflow, path, proc)
        if self.spawns is not None:
            self.spawns.adopt(n.pid for n in dataflow.nodes if n.pid is not None)
        python = sum(1 for n in dataflow.nodes if n.sample_pid)
        self.say(
            f"following {dataflow.label} ({dataflow.uuid}): {len(dataflow.nodes)} nodes, "
            f"{python} Python; recording to {path}"
        )

    def _reap(self) -> None:
        for uuid, follower in list(self.followers.items()):
            if follower.proc.poll() is None:
                continue
            del self.followers[uuid]
            self._record(follower)

    def _record(self, follower: Follower) -> None:
        from dora_doctor.analysis import diagnose
        from dora_doctor.history import entries, write
        from dora_doctor.recording.reader import read_recording

        label = follower.dataflow.label
        try:
            recording = read_recording(follower.recording)
        except DoctorError as err:
            log = follower.recording.with_suffix(".log")
            self.say(f"{label}: no readable recording ({err}); see {log}")
            return
        recording.dataflows[0].name = recording.dataflows[0].name or follower.dataflow.name
        report = diagnose.report_from_recording(recording)
        rows = entries.stops_from(recording, report, "watch", follower.recording)
        if not rows:
            follower.recording.unlink()
            follower.recording.with_suffix(".log").unlink(missing_ok=True)
            self.say(f"{label}: no stop seen while followed; nothing recorded")
            return
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
        kind = rows[0].kind
        where = {
            None: "recording kept, the history could not be written",
            0: "already in the history",
        }.get(added, "recorded")
        self.say(f"{label}: {kind} {where}: {nodes}; {follower.recording}")

    def finish(self, timeout_s: float = FOLLOWER_END_S) -> None:
        """End cleanly: stops in progress run to their end; followers of dataflows that still
        run are asked to end (SIGINT, as Ctrl-C ends `inspect`)."""
        running = set()
        try:
            found = discover(self.cli, ask_version=False)
            running = {d.uuid for d in found.dataflows if (d.status or "").lower() in RUNNING}
        except DoctorError:
            pass
        for uuid, follower in self.followers.items():
            if uuid in running and follower.proc.poll() is None:
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
        self._reap()

    def run(self, until: Optional[Callable[[], bool]] = None) -> None:
        """Poll until Ctrl-C/SIGTERM (KeyboardInterrupt) or ``until()``; then finish."""
        try:
            while until is None or not until():
                began = time.monotonic()
                self.poll()
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
