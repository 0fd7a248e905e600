"""What `dora-doctor watch` costs a machine and a busy node, side by side in one run.

A private dora runs 8 idle Python nodes in one dataflow and a CPU-bound node (samples/
cpu_bound.yml, its ``counter`` thread reporting iterations per 100 ms) in another; one
`dora-doctor watch` with its defaults follows both. Once every node's first baseline samples
are on disk, the run alternates windows with the watch running (ON seconds) and frozen
(OFF seconds: SIGSTOP on the watch's whole process tree, followers and py-spy included, so
nothing of it runs and nothing restarts; SIGCONT resumes it), REPS times, starting and ending
with a frozen window:

* cost: the CPU of the watch's process tree in each running window (user + system of every
  live process of the tree plus what its reaped children used), per second of the window,
  as a share of one core: the mean, and its spread over the windows. The first SETTLE_S of
  each window is left out: there every py-spy recorder takes at once the samples it missed
  while frozen (py-spy's timer catches up), which only the freezing causes; the share with
  it is given too (``share_with_resume_mean``). Target (issue 15): at
  most 1 % of one core on average over 5 minutes; the default here is REPS × ON =
  10 × 30 s = 300 s of watching, in windows (the result says how long; a shorter run is
  not taken as meeting the target);
* slowdown: the counter's iterations/s in each running window over the mean of the frozen
  windows either side of it; the median ratio and the spread of the frozen windows (the
  noise floor of this machine). Target: no measurable slowdown, i.e. within that noise.

Results: bench/results/watch_cost.json.

    python bench/watch_cost.py [--reps 10] [--on 30] [--off 10]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import read_buckets, throughput  # noqa: E402
from results_file import load, write_results  # noqa: E402

from dora_doctor.dora.private import LocalDora  # noqa: E402
from dora_doctor.recording.reader import read_recording  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NODES = 8
TARGET_SHARE = 0.01
WATCHED_S = 300.0  # the 5 minutes
# after a resume, left out of the counter's window and of the watch's cost: py-spy's timer
# takes the samples it missed while frozen back to back (measured: a 1 Hz recorder frozen
# 20 s took 23 samples in 7 s of running), a burst only the freezing causes
SETTLE_S = 0.5


def idle_dataflow(folder: Path) -> Path:
    shutil.copytree(ROOT / "samples" / "nodes", folder / "nodes")
    lines = ["nodes:"]
    for i in range(NODES):
        lines += [
            f"  - id: idle{i}",
            "    path: nodes/well_behaved.py",
            "    inputs:",
            "      tick: dora/timer/millis/100",
            "    outputs:",
            "      - count",
        ]
    path = folder / "idle8.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def tree(root: psutil.Process) -> List[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def tree_cpu(root: psutil.Process) -> float:
    """CPU seconds of the tree so far: every live process and the children it reaped."""
    total = 0.0
    for proc in tree(root):
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def freeze(root: psutil.Process, sig: signal.Signals) -> None:
    for proc in tree(root):
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass


def sampled_nodes(folder: Path) -> set:  # type: ignore[type-arg]
    found = set()
    for path in folder.glob("*.ddrec"):
        try:
            found |= {s.node for s in read_recording(path).stacks}
        except Exception:  # noqa: BLE001 (a line the follower is still writing)
            continue
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--on", type=float, default=30.0)
    parser.add_argument("--off", type=float, default=10.0)
    args = parser.parse_args()
    before = load()
    windows: List[Tuple[str, float, float, float]] = []  # kind, from, to, watch CPU s
    steady: List[float] = []  # per running window: its share from SETTLE_S after the resume
    with tempfile.TemporaryDirectory(prefix="watch-cost-") as tmp:
        folder = Path(tmp)
        counts = folder / "throughput.txt"
        shutil.copytree(ROOT / "samples", folder / "samples", ignore=shutil.ignore_patterns("out"))
        busy = folder / "samples" / "cpu_bound.yml"
        busy.write_text(busy.read_text() + f"    env:\n      CPU_BOUND_OUT: {counts}\n")
        dora = LocalDora.start(folder / "dora")
        db = folder / "history" / "history.sqlite3"
        log = open(folder / "watch.log", "w")  # noqa: SIM115
        watch = None
        try:
            dora.start_dataflow(idle_dataflow(folder / "df"), "idle8")
            dora.wait_running("idle8", nodes=NODES, timeout=120)
            dora.start_dataflow(busy, "busy")
            dora.wait_running("busy", nodes=1, timeout=120)
            watch = subprocess.Popen(
                [sys.executable, "-m", "dora_doctor", "watch", "--db", str(db)],
                env=dict(os.environ, **dora.env),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            root = psutil.Process(watch.pid)
            wanted = {f"idle{i}" for i in range(NODES)} | {"counter"}
            deadline = time.monotonic() + 180
            while sampled_nodes(db.parent / "recordings") < wanted:
                if time.monotonic() > deadline or watch.poll() is not None:
                    raise SystemExit(f"the watch never sampled every node; see {log.name}")
                time.sleep(0.5)
            freeze(root, signal.SIGSTOP)
            plan = ["off"] + ["on", "off"] * args.reps
            for kind in plan:
                if kind == "on":
                    freeze(root, signal.SIGCONT)
                began = time.time()
                cpu = tree_cpu(root)
                if kind == "on":  # the catch-up of a resume, measured apart
                    time.sleep(SETTLE_S)
                    settled_at, settled_cpu = time.time(), tree_cpu(root)
                time.sleep(max(0.0, began + (args.on if kind == "on" else args.off) - time.time()))
                after = tree_cpu(root)
                ended = time.time()
                if kind == "on":
                    freeze(root, signal.SIGSTOP)
                    steady.append((after - settled_cpu) / (ended - settled_at))
                windows.append((kind, began, ended, after - cpu))
            freeze(root, signal.SIGCONT)
        finally:
            if watch is not None:
                watch.send_signal(signal.SIGTERM)
                watch.wait(120)
            log.close()
            dora.close()
        buckets = read_buckets(counts)
    rates = [throughput(buckets, start + SETTLE_S, end) for _, start, end, _ in windows]
    shares = steady
    whole = [used / (end - start) for kind, start, end, used in windows if kind == "on"]
    ratios = [
        rates[i] / ((rates[i - 1] + rates[i + 1]) / 2)
        for i, (kind, *_rest) in enumerate(windows)
        if kind == "on" and not math.isnan(rates[i])
    ]
    frozen = [r for (kind, *_rest), r in zip(windows, rates) if kind == "off" and not math.isnan(r)]
    row: Dict[str, Any] = {
        "nodes": NODES + 1,
        "idle_nodes": NODES,
        "cpu_bound_nodes": 1,
        "reps": args.reps,
        "on_window_s": args.on,
        "off_window_s": args.off,
        "watched_s": round(sum(end - start for kind, start, end, _ in windows if kind == "on"), 1),
        "share_of_one_core_mean": round(statistics.mean(shares), 4),
        "share_of_one_core_stdev": round(statistics.pstdev(shares), 4),
        "share_of_one_core_min": round(min(shares), 4),
        "share_of_one_core_max": round(max(shares), 4),
        "shares": [round(s, 4) for s in shares],
        "settle_s": SETTLE_S,
        "share_with_resume_mean": round(statistics.mean(whole), 4),
        "frozen_watch_cpu_s": round(sum(u for kind, *_r, u in windows if kind == "off"), 3),
        "cpu_bound_ratio_median": round(statistics.median(ratios), 4),
        "cpu_bound_ratios": [round(r, 4) for r in ratios],
        "cpu_bound_unwatched_iterations_per_s_median": round(statistics.median(frozen)),
        "cpu_bound_unwatched_spread_pct": round(
            100 * statistics.pstdev(frozen) / statistics.mean(frozen), 2
        ),
        "loadavg_before": before,
        "watch_defaults": (
            "rate 100 Hz at a stop; baseline: stacks at 1 Hz in 300 s segments, /proc CPU every "
            "2 s, logs and process ends waited for (inotify, pidfd)"
        ),
    }
    out = write_results("watch_cost", [row], target_share_of_one_core=TARGET_SHARE)
    print(
        f"watch: {row['share_of_one_core_mean']:.2%} of one core "
        f"({row['share_with_resume_mean']:.2%} with {SETTLE_S:g} s after each resume; stdev "
        f"{row['share_of_one_core_stdev']:.2%}, {len(shares)} windows, {row['watched_s']} s); "
        f"CPU-bound node at {row['cpu_bound_ratio_median']:.3f} × its unwatched speed "
        f"(noise ±{row['cpu_bound_unwatched_spread_pct']} %); {out}"
    )
    met = row["share_of_one_core_mean"] <= TARGET_SHARE and row["watched_s"] >= WATCHED_S
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
