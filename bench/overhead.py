"""What sampling costs the node it samples: a CPU-bound node's throughput with and without it.

samples/cpu_bound.yml runs on a private dora; its ``counter`` thread reports iterations per
100 ms. The same node is then watched in alternating windows of W seconds, unsampled and
sampled, several repetitions, so slow drifts of the machine (other processes, frequency)
hit both alike: each sampled window is divided by the mean of the unsampled windows either
side of it, and the median of those ratios is reported. Sampled windows run dora-doctor's
own ``Sampler`` (what ``inspect`` runs) at the default 200 Hz, in three set-ups:

* ``default``: both recorders reading without pausing the node (``inspect``'s default,
  ``--nonblocking``);
* ``blocking``: the ``--idle`` chrometrace recorder pausing the node for each sample, plus
  the ``--gil`` recorder, which never pauses it (``inspect --blocking``);
* ``gil_only``: the ``--gil --nonblocking`` recorder alone, one-second segments as in the
  sampler (the floor: what reading the GIL holder alone costs).

The first 0.3 s of each window are left out (py-spy attaching). The target is on the
throughput per second of wall time: at most 3 % slowdown at the default. Also recorded, to
tell the causes apart on a busy machine: the node's iterations per second of its own CPU time
(pauses do not lower it, competing for a core does not either, so what is left is the cost of
being interrupted), the node's CPU share, the CPU time the sampler spent (its threads and its
py-spy processes) per second, and the spread of the unsampled windows (the noise floor).
Results: bench/results/overhead.json.

    python bench/overhead.py [--reps 5] [--window 4]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402

from dora_doctor.capture import pyspy
from dora_doctor.capture.sampler import Sampler
from dora_doctor.dora import discover
from dora_doctor.dora.private import LocalDora
from dora_doctor.model import NodeProcess, SamplerOptions

ROOT = Path(__file__).resolve().parent.parent
RATE = 200
SETTLE_S = 0.3
MODES = ("default", "blocking", "gil_only")
Bucket = Tuple[float, int, float]  # end wall time, iterations, seconds


class GilOnly:
    """The sampler's GIL recorder alone, restarted every second like the sampler's."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._stopping = threading.Event()
        self._proc: "Optional[subprocess.Popen[str]]" = None
        self._lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix="dora-doctor-bench-")
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._proc is not None:
                self._proc.send_signal(signal.SIGINT)
        self._thread.join(10)
        self._tmp.cleanup()

    def _loop(self) -> None:
        segment = 0
        while not self._stopping.is_set():
            segment += 1
            out = Path(self._tmp.name) / f"gil-{segment}"
            argv = pyspy.record_argv(pyspy.find_pyspy(), self.pid, out, gil=True, rate=RATE,
                                     duration_s=1)  # fmt: skip
            with self._lock:
                if self._stopping.is_set():
                    return
                self._proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True, env=pyspy.pyspy_env(),
                    start_new_session=True,
                )  # fmt: skip
            stdout, _ = self._proc.communicate()
            if out.exists():  # read it as the sampler does, so the work is the same
                pyspy.parse_raw(out.read_text(encoding="utf-8", errors="replace"))
                out.unlink()


def cpu_seconds() -> float:
    """CPU time of this process (the sampler's threads) and its reaped children (py-spy)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def node_cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def window(mode: str, node: NodeProcess, seconds: float) -> Dict[str, float]:
    """Run one window; returns its measured interval and the CPU times in it."""
    assert node.sample_pid is not None
    target = psutil.Process(node.sample_pid)
    cpu_before = cpu_seconds()
    began = time.time()
    sampler: Any = None
    if mode == "default":
        sampler = Sampler([node], SamplerOptions(rate=RATE))
    elif mode == "blocking":
        sampler = Sampler([node], SamplerOptions(rate=RATE, nonblocking=False))
    elif mode == "gil_only":
        sampler = GilOnly(node.sample_pid)
    if sampler is not None:
        sampler.start()
    time.sleep(SETTLE_S)
    node_before = node_cpu(target)
    time.sleep(seconds - SETTLE_S)
    ended = time.time()
    node_used = node_cpu(target) - node_before
    if sampler is not None:
        sampler.stop()
    return {"from": began + SETTLE_S, "to": ended, "cpu_s": cpu_seconds() - cpu_before,
            "wall_s": time.time() - began, "node_cpu_s": node_used}  # fmt: skip


def read_buckets(path: Path) -> List[Bucket]:
    buckets: List[Bucket] = []
    if not path.exists():
        return buckets
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            buckets.append((float(parts[0]), int(parts[1]), float(parts[2])))
    return buckets


def throughput(buckets: List[Bucket], start: float, end: float) -> float:
    """Iterations per second over the buckets that lie wholly inside [start, end]."""
    inside = [(n, s) for t, n, s in buckets if t - s >= start and t <= end]
    seconds = sum(s for _, s in inside)
    return sum(n for n, _ in inside) / seconds if seconds else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--window", type=float, default=4.0)
    args = parser.parse_args()
    load_before = load()
    with tempfile.TemporaryDirectory(prefix="dora-doctor-bench-") as tmp:
        samples = Path(tmp) / "samples"
        shutil.copytree(ROOT / "samples", samples, ignore=shutil.ignore_patterns("out"))
        counts = Path(tmp) / "throughput.txt"
        yml = samples / "cpu_bound.yml"
        yml.write_text(yml.read_text() + f"    env:\n      CPU_BOUND_OUT: {counts}\n")
        with LocalDora.start(Path(tmp) / "dora") as dora:
            dora.start_dataflow(yml, "overhead")
            dora.wait_running("overhead", nodes=1)
            found = discover.discover(dora.client, ask_version=False)
            node = discover.select_dataflow(found.dataflows, "overhead").nodes[0]
            began = time.monotonic()  # past the node's start-up: it counts, so it imported
            while len(read_buckets(counts)) < 10 and time.monotonic() - began < 120:
                time.sleep(0.2)
            plan: List[str] = ["none"]
            for rep in range(args.reps):
                rotated = MODES[rep % len(MODES) :] + MODES[: rep % len(MODES)]
                for mode in rotated:
                    plan += [mode, "none"]
            windows = [(mode, window(mode, node, args.window)) for mode in plan]
            dora.stop_dataflow("overhead", grace="2s")
        buckets = read_buckets(counts)
    rates = [throughput(buckets, w["from"], w["to"]) for _, w in windows]
    # iterations per CPU-second of the node: the iterations counted in the window over the
    # CPU time the node used in it (the main thread's share is a few event wake-ups)
    per_cpu = [r * (w["to"] - w["from"]) / w["node_cpu_s"] for r, (_, w) in zip(rates, windows)]
    unsampled = [r for (m, _), r in zip(windows, rates) if m == "none" and not math.isnan(r)]
    row: Dict[str, Any] = {
        "rate_hz": RATE,
        "reps": args.reps,
        "window_s": args.window,
        "unsampled_iterations_per_s_median": round(statistics.median(unsampled)),
        "unsampled_spread_pct": round(
            100 * statistics.pstdev(unsampled) / statistics.mean(unsampled), 2
        ),
        "unsampled_node_cpu_share": round(
            statistics.median(
                w["node_cpu_s"] / (w["to"] - w["from"]) for m, w in windows if m == "none"
            ),
            3,
        ),
    }

    def beside(values: List[float], i: int) -> float:
        return values[i] / ((values[i - 1] + values[i + 1]) / 2)

    for mode in MODES:
        ratios, cpu_ratios, cpu, share = [], [], [], []
        for i, (m, w) in enumerate(windows):
            if m == mode:
                ratios.append(beside(rates, i))
                cpu_ratios.append(beside(per_cpu, i))
                cpu.append(w["cpu_s"] / w["wall_s"])
                share.append(w["node_cpu_s"] / (w["to"] - w["from"]))
        median = statistics.median(ratios)
        row[mode] = {
            "ratios": [round(r, 4) for r in ratios],
            "median_ratio": round(median, 4),
            "slowdown_pct": round((1 - median) * 100, 2),
            "per_cpu_second_median_ratio": round(statistics.median(cpu_ratios), 4),
            "node_cpu_share": round(statistics.median(share), 3),
            "sampler_cpu_pct": round(100 * statistics.median(cpu), 1),
        }
    row["loadavg_before"] = load_before
    row["loadavg_after"] = load()
    print(json.dumps(row), flush=True)
    out = write_results("overhead", [row], target_slowdown_pct=3.0)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
