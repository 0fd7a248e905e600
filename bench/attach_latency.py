"""Attach latency: from launching ``dora-doctor inspect --record R`` on an 8-node dataflow to
the moment R holds a stacks record for every node, against a bare ``py-spy dump`` of one node.

A private dora runs 8 well-behaved Python nodes (the sampling-rate bench's dataflow). Each
repetition launches the ``dora-doctor`` console script, reads the recording as it grows
(polling every 5 ms) and notes when the header appears (interpreter start, imports,
discovery through the dora CLI, the permission preflight), when each node's first sample was
taken (the first span of its first stacks record), when each node's first py-spy segment
ended (its process exited with the output written), and when every node's first stacks record
is on disk (the headline: what a user can first read). Then it sends Ctrl-C. In the same run,
``py-spy dump --pid P`` on one of the nodes is timed as the reference. Target: ≤ 1.0 s.
Results: bench/results/attach_latency.json.

    python bench/attach_latency.py [--reps 5] [--nodes 8]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402
from sampling_rate import dataflow_yaml, wait_settled  # noqa: E402

from dora_doctor.capture.pyspy import find_pyspy, pyspy_env
from dora_doctor.dora.private import LocalDora
from dora_doctor.executables import beside_python_or_on_path

POLL_S = 0.005
TIMEOUT_S = 60.0


def doctor_argv() -> List[str]:
    script = beside_python_or_on_path("dora-doctor")
    return [script] if script else [sys.executable, "-m", "dora_doctor"]


def attach_once(dora: LocalDora, name: str, nodes: int, record: Path) -> Dict[str, Any]:
    launched = time.time()
    proc = subprocess.Popen(
        [*doctor_argv(), "inspect", name, "--record", str(record), "--duration", "30s", "--json"],
        env=dora.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    header_at: Optional[float] = None
    on_disk: Dict[str, float] = {}
    first_sample: Dict[str, float] = {}
    segment_end: Dict[str, float] = {}
    offset, pending = 0, b""
    try:
        while len(on_disk) < nodes:
            if time.time() - launched > TIMEOUT_S or proc.poll() is not None:
                raise RuntimeError(f"no samples of every node: {proc.communicate()[1][-500:]}")
            try:
                with open(record, "rb") as file:
                    file.seek(offset)
                    chunk = file.read()
            except FileNotFoundError:
                chunk = b""
            now = time.time()
            offset += len(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                value = json.loads(line)
                if value["type"] == "header" and header_at is None:
                    header_at = now
                elif value["type"] == "stacks" and value["node"] not in on_disk:
                    on_disk[value["node"]] = now
                    starts = [s[0] for t in value["threads"] for s in t["spans"]]
                    first_sample[value["node"]] = min(starts, default=value["start"])
                    segment_end[value["node"]] = value["end"]
            time.sleep(POLL_S)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert header_at is not None
    return {
        "header_s": round(header_at - launched, 3),
        "first_sample_all_nodes_s": round(max(first_sample.values()) - launched, 3),
        "first_sample_first_node_s": round(min(first_sample.values()) - launched, 3),
        "first_segment_ended_all_nodes_s": round(max(segment_end.values()) - launched, 3),
        "all_nodes_on_disk_s": round(max(on_disk.values()) - launched, 3),
    }


def dump_seconds(pid: int) -> float:
    began = time.perf_counter()
    subprocess.run([find_pyspy(), "dump", "--pid", str(pid)], env=pyspy_env(),
                   capture_output=True, check=True)  # fmt: skip
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=8)
    args = parser.parse_args()
    runs: List[Dict[str, Any]] = []
    dumps: List[float] = []
    with tempfile.TemporaryDirectory(prefix="dora-doctor-bench-") as tmp:
        with LocalDora.start(Path(tmp) / "dora") as dora:
            yml = Path(tmp) / "attach.yml"
            yml.write_text(dataflow_yaml(args.nodes))
            name = f"attach{args.nodes}"
            dora.start_dataflow(yml, name)
            pids = dora.wait_running(name, nodes=args.nodes, timeout=30 + 5 * args.nodes)
            one = next(iter(pids.values()))
            settle = wait_settled(list(pids.values()))
            load_before = load()
            for rep in range(args.reps):
                dumps.append(dump_seconds(one))
                run = attach_once(dora, name, args.nodes, Path(tmp) / f"r{rep}.ddrec")
                print(json.dumps(run), flush=True)
                runs.append(run)
            dumps.append(dump_seconds(one))

    def median(key: str) -> float:
        return round(float(statistics.median(r[key] for r in runs)), 3)

    totals = [r["all_nodes_on_disk_s"] for r in runs]
    dump = statistics.median(dumps)
    row = {
        "nodes": args.nodes,
        "reps": args.reps,
        "runs": runs,
        "header_s_median": median("header_s"),
        "first_sample_all_nodes_s_median": median("first_sample_all_nodes_s"),
        "first_segment_ended_all_nodes_s_median": median("first_segment_ended_all_nodes_s"),
        "all_nodes_on_disk_s_median": median("all_nodes_on_disk_s"),
        "all_nodes_on_disk_s_min": min(totals),
        "all_nodes_on_disk_s_max": max(totals),
        "pyspy_dump_one_node_s_median": round(dump, 3),
        "ratio_to_pyspy_dump": round(statistics.median(totals) / dump, 1),
        "waited_for_idle_nodes_s": settle,
        "loadavg_before": load_before,
        "loadavg_after": load(),
    }
    print(json.dumps({k: v for k, v in row.items() if k != "runs"}), flush=True)
    out = write_results("attach_latency", [row], target_s=1.0)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
