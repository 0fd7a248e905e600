"""Sampling rate per node at 2, 4, 8 and 16 Python nodes on this machine, against bare py-spy.

For each node count N: a private dora runs a dataflow of N well-behaved nodes (each on a
100 ms timer); once they have started up and gone idle, `dora-doctor inspect --duration D
--json` samples them, and the report's `sample_rate_hz` per node is collected: with the
default one-second segments (not pausing the nodes), with `--segment 2`, and with
`--blocking` (pausing them for each sample). In the same run, one bare
`py-spy record -r RATE -d D` on one node of the same dataflow gives the reference rate.
To tell where samples go missing, the recording of the same inspect is read too: the median
length of a py-spy segment (its process's lifetime), the median gap between two segments of
a node (parsing the output and starting the next py-spy), and the lowest node's rate within
its segments (what py-spy achieved while it ran).
Results: bench/results/sampling_rate.json.

    python bench/sampling_rate.py [--nodes 2 4 8 16] [--seconds 10] [--segments 1 2]
                                   [--no-blocking]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import psutil

from dora_doctor.dora.private import LocalDora

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402

from dora_doctor.capture.pyspy import find_pyspy, pyspy_env

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "samples" / "nodes" / "well_behaved.py"
RATE = 200


def dataflow_yaml(count: int) -> str:
    lines = ["nodes:"]
    for i in range(count):
        lines += [
            f"  - id: n{i}",
            f"    path: {NODE}",
            "    inputs:",
            "      tick: dora/timer/millis/100",
            "    outputs:",
            "      - count",
        ]
    return "\n".join(lines) + "\n"


def bare_pyspy_rate(pid: int, seconds: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [find_pyspy(), "record", "--pid", str(pid), "--rate", str(RATE), "--duration",
             str(seconds), "--format", "raw", "--idle", "--output", f"{tmp}/o.txt"],
            capture_output=True, text=True, env=pyspy_env(), check=True,
        ).stdout  # fmt: skip
    samples = int(re.search(r"Samples: (\d+)", out).group(1))  # type: ignore[union-attr]
    return samples / seconds


def wait_settled(pids: List[int], timeout: float = 120.0) -> float:
    """Wait until every node is idle (under 10 % of a core over one second); returns the wait.

    ``wait_running`` returns as soon as the processes exist, while they are still importing
    pyarrow and dora: 16 nodes doing that on 2 cores keep both busy for seconds, and a
    process that busy is sampled far more slowly, which is start-up, not steady state.
    """
    began = time.monotonic()
    procs = [psutil.Process(pid) for pid in pids]

    def cpu() -> List[float]:
        return [sum(p.cpu_times()[:2]) for p in procs]

    while time.monotonic() - began < timeout:
        before = cpu()
        time.sleep(1.0)
        if all(after - b < 0.1 for after, b in zip(cpu(), before)):
            break
    return round(time.monotonic() - began, 1)


def segment_stats(record: Path) -> Dict[str, float]:
    per_node: Dict[str, List[Tuple[float, float, int]]] = {}
    for line in record.read_text().splitlines():
        value = json.loads(line)
        if value.get("type") == "stacks":
            per_node.setdefault(value["node"], []).append(
                (value["start"], value["end"], value["ticks"])
            )
    lengths = [end - start for segs in per_node.values() for start, end, _ in segs]
    gaps = [b[0] - a[1] for segs in per_node.values() for a, b in zip(segs, segs[1:])]
    within = [
        sum(t for _, _, t in segs) / sum(end - start for start, end, _ in segs)
        for segs in per_node.values()
    ]
    return {
        "segment_length_s_median": round(statistics.median(lengths), 3),
        "gap_between_segments_s_median": round(statistics.median(gaps), 3) if gaps else 0.0,
        "gap_between_segments_s_max": round(max(gaps), 3) if gaps else 0.0,
        "min_hz_within_segments": round(min(within), 1),
    }


def measure(count: int, seconds: int, segment: int, nonblocking: bool = True) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, LocalDora.start(Path(tmp) / "dora") as dora:
        yml = Path(tmp) / f"n{count}.yml"
        yml.write_text(dataflow_yaml(count))
        dora.start_dataflow(yml, f"bench{count}")
        pids = dora.wait_running(f"bench{count}", nodes=count, timeout=30 + 5 * count)
        settle = wait_settled(list(pids.values()))
        load_before = load()
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "dora_doctor", "inspect", f"bench{count}", "--duration",
             str(seconds), "--rate", str(RATE), "--segment", str(segment), "--json",
             "--record", str(Path(tmp) / "r.ddrec")] + ([] if nonblocking else ["--blocking"]),
            env=dora.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        wall = time.monotonic() - started
        report = json.loads(result.stdout)
        rates: List[float] = [n["sample_rate_hz"] for n in report["dataflows"][0]["nodes"]]
        gil_known = all(n["gil"]["held_share"] is not None for n in report["dataflows"][0]["nodes"])
        reference = bare_pyspy_rate(next(iter(pids.values())), seconds)
        return {
            "nodes": count,
            "segment_s": segment,
            "nonblocking": nonblocking,
            "seconds": seconds,
            "rate_requested_hz": RATE,
            "per_node_hz": rates,
            "min_hz": min(rates),
            "mean_hz": round(statistics.mean(rates), 1),
            "bare_pyspy_one_node_hz": round(reference, 1),
            "ratio_min_to_bare": round(min(rates) / reference, 3),
            "gil_known_for_every_node": gil_known,
            "inspect_wall_s": round(wall, 2),
            "waited_for_idle_nodes_s": settle,
            **segment_stats(Path(tmp) / "r.ddrec"),
            "loadavg_before": load_before,
            "loadavg_after": load(),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--segments", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-blocking", action="store_true", help="skip the --blocking run")
    args = parser.parse_args()
    results = []
    for count in args.nodes:
        variants = [(segment, True) for segment in args.segments]
        if not args.no_blocking:
            variants.append((1, False))
        for segment, nonblocking in variants:
            row = measure(count, args.seconds, segment, nonblocking)
            print(json.dumps(row), flush=True)
            results.append(row)
    out = write_results("sampling_rate", results)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
