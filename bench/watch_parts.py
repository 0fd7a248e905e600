"""Where the CPU of `dora-doctor watch` goes, part by part, with 8 idle Python nodes on a
private dora: each candidate part runs alone for the same window and its CPU is read from
getrusage (RUSAGE_CHILDREN for processes it starts, RUSAGE_THREAD for in-process polling).

Parts: one `dora list` per second (the old watcher's poll); py-spy record (--idle
--nonblocking) per node at the old watch rate (20 Hz, 5 s segments) and at baseline rates;
the baseline's 1 Hz recorders once started (their start-up and end left out: a 300 s
segment pays them once per 300 s); one `py-spy dump --nonblocking` per node every 5 s (the
other way to a low-rate baseline); the process/log poll of the stop watch at 20 ms, 100 ms
and as the baseline runs it (woken by log writes through inotify and by process ends
through pidfds, everything looked at every 5 s); the /proc per-thread CPU meter at 50 ms,
1 s and as the baseline runs it. Each part runs alone for the same window (a segment longer
than the window is ended with it, so its py-spy start-up counts once per window: an upper
bound). Shares are of one core. Results: bench/results/watch_parts.json.

    python bench/watch_parts.py [--window 10]
"""

from __future__ import annotations

import argparse
import os
import queue
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402
from watch_cost import NODES, idle_dataflow  # noqa: E402

from dora_doctor.capture import pyspy  # noqa: E402
from dora_doctor.capture.endwatch import StopWatch, find_dora_processes  # noqa: E402
from dora_doctor.capture.logtail import find_log_files  # noqa: E402
from dora_doctor.capture.threadcpu import CpuMeter  # noqa: E402
from dora_doctor.dora.discover import discover  # noqa: E402
from dora_doctor.dora.private import LocalDora  # noqa: E402
from dora_doctor.model import NodeProcess  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def thread_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def dora_list(dora: LocalDora, window: float) -> float:
    before = children_cpu()
    end = time.monotonic() + window
    while time.monotonic() < end:
        began = time.monotonic()
        dora.cli("list", "--format", "json")
        time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    return children_cpu() - before


def records(pids: List[int], window: float, rate: int, segment: int, folder: Path) -> float:
    """One stacks recorder per node, restarted every ``segment`` s, for ``window`` s."""
    binary = pyspy.find_pyspy()
    before = children_cpu()
    end = time.monotonic() + window
    n = 0
    while time.monotonic() < end:
        procs = []
        for pid in pids:
            n += 1
            argv = pyspy.record_argv(
                binary,
                pid,
                folder / f"r{n}",
                gil=False,
                rate=rate,
                duration_s=segment,
                nonblocking=True,
            )
            procs.append(
                subprocess.Popen(
                    argv,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=pyspy.pyspy_env(),
                )
            )
        left = end - time.monotonic()
        try:
            procs[-1].wait(max(0.1, min(segment + 5, left)))
        except subprocess.TimeoutExpired:
            pass
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait(30)
    return children_cpu() - before


def steady_records(pids: List[int], window: float, rate: int, folder: Path) -> float:
    """One stacks recorder per node, measured only once started (2 s after launch) and
    before its end: what a long baseline segment costs per second."""
    binary = pyspy.find_pyspy()
    procs = [
        subprocess.Popen(
            pyspy.record_argv(
                binary,
                pid,
                folder / f"steady{pid}",
                gil=False,
                rate=rate,
                duration_s=int(window) + 30,
                nonblocking=True,
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=pyspy.pyspy_env(),
        )
        for pid in pids
    ]
    watched = [psutil.Process(proc.pid) for proc in procs]
    time.sleep(2.0)

    def used() -> float:
        return sum(sum(p.cpu_times()[:2]) for p in watched)

    before = used()
    time.sleep(window)
    cpu = used() - before
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    for proc in procs:
        proc.wait(30)
    return cpu


def dumps(pids: List[int], window: float, every: float) -> float:
    binary = pyspy.find_pyspy()
    before = children_cpu()
    end = time.monotonic() + window
    while time.monotonic() < end:
        began = time.monotonic()
        for pid in pids:
            subprocess.run(
                [binary, "dump", "--pid", str(pid), "--json", "--nonblocking"],
                capture_output=True,
                env=pyspy.pyspy_env(),
                check=False,
            )
        time.sleep(max(0.0, every - (time.monotonic() - began)))
    return children_cpu() - before


def in_thread(make: Callable[[], Any], window: float) -> float:
    """CPU of the polling thread(s) ``make()`` starts, measured as this process's CPU while
    only they run (the main thread sleeps)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before = usage.ru_utime + usage.ru_stime
    part = make()
    part.start()
    time.sleep(window)
    part.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime - before


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    window = args.window
    rows: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="watch-parts-") as tmp:
        folder = Path(tmp)
        dora = LocalDora.start(folder / "dora")
        try:
            yml = idle_dataflow(folder / "df")
            dora.start_dataflow(yml, "idle8")
            dora.wait_running("idle8", nodes=NODES, timeout=120)
            os.environ.update(dora.env)
            found = discover(dora.client, ask_version=False)
            nodes: List[NodeProcess] = [n for d in found.dataflows for n in d.nodes]
            pids = [n.sample_pid for n in nodes if n.sample_pid]
            files = find_log_files(nodes, dora.coordinator_port)
            procs = find_dora_processes(nodes, dora.coordinator_port)
            sink: "queue.Queue[Any]" = queue.Queue()

            def watch(poll: float) -> Callable[[], Any]:
                def make() -> Any:
                    import dora_doctor.capture.endwatch as endwatch

                    endwatch.POLL_S = poll
                    return StopWatch(nodes, files, sink, procs)

                return make

            def baseline_watch() -> Any:
                # watch's baseline: woken by log writes (inotify) and process ends (pidfd)
                return StopWatch(nodes, files, sink, procs, on_stop=lambda why, when: None)

            parts: List[tuple] = [  # type: ignore[type-arg]
                ("dora list every 1 s", lambda: dora_list(dora, window)),
                ("py-spy record 20 Hz, 5 s segments", lambda: records(pids, window, 20, 5, folder)),
                ("py-spy record 1 Hz, 30 s segments", lambda: records(pids, window, 1, 30, folder)),
                ("py-spy record 2 Hz, 30 s segments", lambda: records(pids, window, 2, 30, folder)),
                (
                    "py-spy record 1 Hz, once started (no start-up, no end)",
                    lambda: steady_records(pids, window, 1, folder),
                ),
                ("py-spy dump every 5 s", lambda: dumps(pids, window, 5.0)),
                ("stop watch poll 20 ms", lambda: in_thread(watch(0.02), window)),
                ("stop watch poll 100 ms", lambda: in_thread(watch(0.1), window)),
                (
                    "stop watch baseline (inotify, pidfd, 5 s backstop)",
                    lambda: in_thread(baseline_watch, window),
                ),
                ("cpu meter poll 50 ms", lambda: in_thread(lambda: CpuMeter(nodes, sink), window)),
                (
                    "cpu meter poll 1 s",
                    lambda: in_thread(lambda: CpuMeter(nodes, sink, poll_s=1.0), window),
                ),
                (
                    "cpu meter baseline (2 s, a window per poll)",
                    lambda: in_thread(
                        lambda: CpuMeter(nodes, sink, poll_s=2.0, polls_per_window=1), window
                    ),
                ),
            ]
            for name, run in parts:
                before = load()
                cpu = run()
                rows.append(
                    {
                        "part": name,
                        "cpu_s": round(cpu, 4),
                        "window_s": window,
                        "share_of_one_core": round(cpu / window, 4),
                        "nodes": len(pids),
                        "loadavg_before": before,
                    }
                )
                print(f"{name:40s} {cpu / window:7.2%} of one core")
                while not sink.empty():
                    sink.get_nowait()
        finally:
            dora.close()
    print(write_results("watch_parts", rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
