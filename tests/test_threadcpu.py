"""Per-thread CPU time from /proc, and the lane states it lets the reports draw."""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
from helpers import assert_recording_lines_valid

from dora_doctor.analysis.diagnose import cpu_share
from dora_doctor.analysis.timeline import (
    HELD,
    NOT_HELD,
    RUNNING,
    SOME,
    WAITING,
    bucket_shares,
    busy_share,
    lane_state,
)
from dora_doctor.capture.threadcpu import (
    CLOCK_TICKS,
    CpuMeter,
    ThreadStat,
    cpu_used_between,
    parse_stat,
    read_threads,
)
from dora_doctor.dora.discover import catches_sigterm
from dora_doctor.model import CpuSegment, NodeProcess
from dora_doctor.recording.codec import make_header
from dora_doctor.recording.reader import read_recording
from dora_doctor.recording.writer import RecordingWriter

linux = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")

# /proc/PID/task/TID/stat of a thread named "a) b (c" (comm may hold both parentheses);
# utime 250 and stime 50 ticks are fields 14 and 15.
STAT = (
    "4242 (a) b (c) S 1 4242 4242 0 -1 4194368 3000 0 0 0 250 50 0 0 20 0 3 0 "
    "1000 20000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
)


def test_stat_line_is_read_from_the_last_parenthesis() -> None:
    assert parse_stat(STAT) == ThreadStat(pytest.approx(300 / CLOCK_TICKS), False, "a) b (c")
    running = STAT.replace(") S 1", ") R 1")
    assert parse_stat(running) == ThreadStat(pytest.approx(3.0), True, "a) b (c")
    assert parse_stat("garbage") is None
    assert parse_stat("1 (x) S 1 2") is None


def test_cpu_between_readings_counts_new_threads_whole_and_drops_gone_ones() -> None:
    def at(**seconds: float) -> Dict[int, ThreadStat]:
        return {int(k[1:]): ThreadStat(v, False) for k, v in seconds.items()}

    used = cpu_used_between(at(t1=2.0, t2=1.0, t3=5.0), at(t1=2.5, t2=1.0, t4=0.3))
    assert used == {1: 0.5, 2: 0.0, 4: 0.3}


@linux
def test_a_spinning_thread_uses_cpu_and_a_sleeping_one_does_not() -> None:
    stop = threading.Event()
    ids: List[int] = []

    def spin() -> None:
        ids.append(threading.get_native_id())
        block = b"x" * (8 * 1024 * 1024)
        while not stop.is_set():
            hashlib.sha256(block)  # C code that releases the GIL

    def sleep() -> None:
        ids.append(threading.get_native_id())
        stop.wait()

    threads = [threading.Thread(target=spin), threading.Thread(target=sleep)]
    for t in threads:
        t.start()
    try:
        while len(ids) < 2:
            time.sleep(0.01)
        before = read_threads(os.getpid())
        # Wait for the spinner's CPU time, not for a wall-clock time: on a loaded machine
        # (CI shares its 2 cores) 0.6 s of wall time can hold far less than 0.25 s of CPU.
        deadline = time.monotonic() + 30.0
        while True:
            time.sleep(0.1)
            after = read_threads(os.getpid())
            used = cpu_used_between(before, after)
            if used.get(ids[0], 0.0) >= 0.25 or time.monotonic() > deadline:
                break
    finally:
        stop.set()
        for t in threads:
            t.join()
    spinner, sleeper = ids
    assert used[spinner] >= 0.25, used
    assert used[sleeper] <= 0.03, used
    assert not after[sleeper].runnable


def test_threads_of_a_missing_process_are_none() -> None:
    assert read_threads(2**22 + 12345) == {}


@linux
def test_the_meter_emits_windows_per_node() -> None:
    out: "queue.Queue[Any]" = queue.Queue()
    me = NodeProcess("self", "u-1", os.getpid(), os.getpid(), True)
    me.catches_sigterm = catches_sigterm(os.getpid())  # as discovery read it: no change to say
    meter = CpuMeter([me, NodeProcess("native", "u-1", 1, None)], out, poll_s=0.02)
    meter.start()
    time.sleep(0.5)
    meter.stop()
    segments = [out.get_nowait() for _ in range(out.qsize())]
    assert len(segments) >= 3
    assert all(isinstance(s, CpuSegment) and s.node == "self" for s in segments)
    assert threading.get_native_id() in segments[0].cpu
    assert segments[0].runnable[threading.get_native_id()] == 0.0  # sleeping in this test
    assert all(b.start == pytest.approx(a.end) for a, b in zip(segments, segments[1:]))


@pytest.mark.parametrize(
    ("gil", "cpu", "state"),
    [
        (0.9, 0.95, HELD),
        (0.9, None, HELD),
        (0.0, 0.97, RUNNING),  # hashlib, numpy: on a CPU, GIL released
        (0.3, 0.95, RUNNING),
        (0.3, 0.4, SOME),
        (0.3, None, SOME),
        (0.0, 0.02, WAITING),  # sleep, a lock, an event, or the GIL itself
        (0.0, None, NOT_HELD),  # recordings made without CPU windows
    ],
)
def test_lane_state_table(gil: float, cpu: Any, state: str) -> None:
    assert lane_state(gil, cpu) == state


def test_windows_spread_over_buckets() -> None:
    at = bucket_shares([(10.0, 10.25, 0.8), (10.25, 10.5, 0.1)], 10.0, 0.1, 10)
    assert at == {0: 0.8, 1: 0.8, 2: 0.1, 3: 0.1, 4: 0.1, 5: 0.1}


def test_cpu_share_over_a_window_weighs_partial_overlaps() -> None:
    cpu = [
        CpuSegment("u", "n", 1, 0.0, 1.0, {7: 1.0}),
        CpuSegment("u", "n", 1, 1.0, 2.0, {7: 0.0}),
    ]
    assert cpu_share(cpu, 7, (0.5, 1.5)) == pytest.approx(0.5)
    assert cpu_share(cpu, 8, (0.0, 2.0)) == 0.0
    assert cpu_share(cpu, 7, (5.0, 6.0)) is None  # no CPU data there


def test_a_thread_waiting_for_a_cpu_still_counts_as_busy() -> None:
    # on a loaded machine: runnable in every poll, but on a CPU only a third of the time
    window = CpuSegment("u", "n", 1, 0.0, 0.25, {7: 0.08}, {7: 1.0})
    assert busy_share(window, 7) == 1.0
    assert busy_share(CpuSegment("u", "n", 1, 0.0, 0.25, {7: 0.2}, {7: 0.2}), 7) == 0.8


def test_cpu_records_round_trip_and_validate(tmp_path: Path) -> None:
    path = tmp_path / "r.ddrec"
    with RecordingWriter(path, make_header([], "1.1.0", {"rate": 100})) as writer:
        writer.write(CpuSegment("u", "n", 1, 1.0, 1.25, {11: 0.24, 12: 0.0}, {11: 1.0, 12: 0.0}))
    rec = read_recording(path)
    assert rec.cpu == [CpuSegment("u", "n", 1, 1.0, 1.25, {11: 0.24, 12: 0.0}, {11: 1.0, 12: 0.0})]
    assert_recording_lines_valid(path.read_text())


@linux
def test_the_meter_names_each_thread_once_as_the_kernel_does() -> None:
    """Thread names (comm) tell dora's threads from a library's; each is sent once per node,
    not every window, and a renamed thread again."""
    ready, done = threading.Event(), threading.Event()

    def worker() -> None:
        ready.set()
        done.wait(10)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    ready.wait(5)
    tid = thread.native_id
    proc_name = Path(f"/proc/self/task/{tid}/comm")
    proc_name.write_text("dora-node-runti")  # a name as dora's Rust threads set theirs
    output: "queue.Queue[Any]" = queue.Queue()
    me = NodeProcess(
        id="n", dataflow="d", pid=os.getpid(), sample_pid=os.getpid(), catches_sigterm=False
    )
    meter = CpuMeter([me], output, poll_s=0.01, polls_per_window=2)
    for _ in range(7):
        meter._poll()
    proc_name.write_text("renamed")
    for _ in range(2):
        meter._poll()
    done.set()
    segments = [x for x in list(output.queue) if isinstance(x, CpuSegment)]
    assert len(segments) >= 3
    assert segments[0].names[tid] == "dora-node-runti"
    assert all(tid not in seg.names for seg in segments[1:-1])
    assert segments[-1].names == {tid: "renamed"}
