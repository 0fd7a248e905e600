"""`dora-doctor history` on 100,000 node stops: how long the answer takes.

Builds (in a temp dir) a history of 12,500 stops × 8 nodes over 60 days, with realistic
outcomes (a few terminated and killed, one node slowing down), then times, best of 5:
- the query: open the DB, read every node stop, summarise per node, render the JSON (what the
  command does after Python has started);
- the whole CLI, `python -m dora_doctor history --json`, Python's start-up included;
- the same with `--since 7d` and with `--node`.
Target: the query answers in at most 0.3 s. On a shared machine the wall time carries the
load (it is in every row); the CPU seconds of the same query are measured too.
Results: bench/results/history_query.json.

    python bench/history_query.py [--node-stops 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402

from dora_doctor.history import query as history_query  # noqa: E402
from dora_doctor.history import store, summary  # noqa: E402
from dora_doctor.history.store import NodeStopRow, StopRow  # noqa: E402

NODES = 8
TARGET_S = 0.3


def build(path: Path, node_stops: int) -> None:
    rng = random.Random(15)
    db = store.connect(path)
    stops = node_stops // NODES
    now = time.time()
    db.execute("BEGIN")
    for i in range(stops):
        stop = StopRow(
            dataflow_uuid=f"01a21300-0000-7000-8000-{i:012d}",
            dataflow_name=rng.choice(["robot", "arm", "camera-rig"]),
            kind="stop",
            writer="bench",
            started_at=now - 60 * 86400 + i * (60 * 86400 / stops),
            grace_s=2.0,
            machine="A",
        )
        for n in range(NODES):
            roll = rng.random()
            outcome = "terminated" if roll < 0.03 else "killed" if roll < 0.04 else "clean"
            seconds = 2.0 if outcome == "terminated" else 3.0 if outcome == "killed" else 0.0
            seconds = seconds or rng.uniform(0.05, 1.5) * (1 + (n == 7) * i / stops)
            stop.nodes.append(
                NodeStopRow(
                    f"node{n}",
                    outcome,
                    round(seconds, 3),
                    outcome != "clean",
                    "gil-contention" if outcome != "clean" else "none",
                    holder_thread="worker",
                    holder_function="crunch",
                    holder_file="nodes/crunch.py",
                    holder_line=24,
                    samples=600,
                )
            )
        store.add_stop(db, stop, own_transaction=False)  # one transaction for all
    db.execute("COMMIT")
    db.close()


def query(path: Path, since_s: Any = None, node: Any = None) -> Dict[str, Any]:
    found = history_query.summarise([path], None, node, summary.since_cutoff(since_s))
    data = found.to_dict()
    json.dumps(data)
    return data


def best_of(fn: Callable[[], Any], times: int = 5) -> float:
    best = float("inf")
    for _ in range(times):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def best_cpu_of(fn: Callable[[], Any], times: int = 5) -> float:
    """CPU seconds of this process: what the query costs, whatever the machine's load."""
    best = float("inf")
    for _ in range(times):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def best_child_cpu_of(fn: Callable[[], Any], times: int = 5) -> float:
    """CPU seconds of the child processes fn runs (user + system): the whole command's cost,
    Python's start-up and imports included, whatever the machine's load."""
    best = float("inf")
    for _ in range(times):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        fn()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, spent)
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node-stops", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.sqlite3"
        began = time.perf_counter()
        build(path, args.node_stops)
        build_s = time.perf_counter() - began
        data = query(path)
        assert data["node_stops"] == args.node_stops, data["node_stops"]
        cli = [sys.executable, "-m", "dora_doctor", "history", "--db", str(path), "--json"]
        env = dict(os.environ)

        def run_cli(*extra: str) -> None:
            subprocess.run([*cli, *extra], env=env, check=True, capture_output=True)

        measures: List[Tuple[str, Callable[[], float]]] = [
            ("query, all", lambda: best_of(lambda: query(path))),
            ("query, all: CPU seconds", lambda: best_cpu_of(lambda: query(path))),
            ("query, --since 7d", lambda: best_of(lambda: query(path, 7 * 86400.0))),
            ("query, --node node7", lambda: best_of(lambda: query(path, None, "node7"))),
            ("CLI, all (with Python start-up)", lambda: best_of(run_cli)),
            ("CLI, all: CPU seconds", lambda: best_child_cpu_of(run_cli)),
            (
                "CLI, python -c pass (start-up alone)",
                lambda: best_of(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)),
            ),
        ]
        rows: List[Dict[str, Any]] = []
        for what, measure in measures:
            before = load()
            rows.append(
                {
                    "what": what,
                    "seconds": round(measure(), 4),
                    "loadavg_before": before,
                    "node_stops": args.node_stops,
                }
            )
        regressions = [r["node"] for r in data["regressions"]]
        out = write_results(
            "history_query",
            rows,
            target_s=TARGET_S,
            build_s=round(build_s, 2),
            db_bytes=path.stat().st_size,
            regressions_found=regressions,
        )
    for row in rows:
        print(f"{row['what']:40s} {row['seconds']:.3f} s")
    print(f"regressions found: {regressions}; written {out}")
    return 0 if rows[0]["seconds"] <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
