"""What `dora-doctor watch` costs a machine: CPU of the watch and everything it starts
(its followers, their py-spy processes, the `dora list` polls), per second of wall time, with
8 idle Python nodes in one dataflow on a private dora.

Steady state, without the start-up: the watch is run twice, for SHORT and for LONG seconds
after its first samples are on disk; all CPU of the watch's process tree is read from
getrusage(RUSAGE_CHILDREN) once it has ended (it waits for its followers, they for their
py-spy), and (CPU_long − CPU_short) / (LONG − SHORT) is the cost per second. Target (issue
15): at most 1 % of one core. Results: bench/results/watch_cost.json.

    python bench/watch_cost.py [--short 15] [--long 75] [--rate 20] [--segment 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402

from dora_doctor.dora.private import LocalDora  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NODES = 8
TARGET_SHARE = 0.01
POLL = os.environ.get("WATCH_COST_POLL", "1s")


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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def watch_for(
    env: Dict[str, str], db: Path, seconds: float, rate: int, segment: int
) -> Dict[str, float]:
    """Run the watch until its first samples are on disk, then ``seconds`` more."""
    before = children_cpu()
    began = time.monotonic()
    log = db.parent / f"watch-{seconds:g}.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "dora_doctor", "watch", "--db", str(db)),
                *("--rate", str(rate), "--segment", str(segment), "--poll", POLL),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            recordings = list((db.parent / "recordings").glob("*.ddrec"))
            if recordings and recordings[0].read_text().count('"type":"stacks"') >= NODES:
                break
            time.sleep(0.2)
        else:
            proc.kill()
            raise SystemExit(f"the watch never sampled; see {log}")
        ready = time.monotonic()
        time.sleep(seconds)
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    return {
        "cpu_s": children_cpu() - before,
        "watched_s": seconds,
        "ready_after_s": ready - began,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=float, default=15.0)
    parser.add_argument("--long", type=float, default=75.0)
    parser.add_argument("--rate", type=int, default=20)  # watch's defaults
    parser.add_argument("--segment", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="watch-cost-") as tmp:
        folder = Path(tmp)
        dora = LocalDora.start(folder / "dora")
        try:
            yml = idle_dataflow(folder / "df")
            dora.start_dataflow(yml, "idle8")
            dora.wait_running("idle8", nodes=NODES, timeout=120)
            env = dict(os.environ, **dora.env)
            rows: List[Dict[str, Any]] = []
            for seconds in (args.short, args.long):
                before = load()
                db = folder / f"db-{seconds:g}" / "history.sqlite3"
                db.parent.mkdir()
                row = watch_for(env, db, seconds, args.rate, args.segment)
                row.update(loadavg_before=before, rate_hz=args.rate, nodes=NODES)
                row["segment_s"] = args.segment
                rows.append(row)
        finally:
            dora.close()
    short, long_ = rows
    share = (long_["cpu_s"] - short["cpu_s"]) / (long_["watched_s"] - short["watched_s"])
    out = write_results(
        "watch_cost",
        rows,
        target_share_of_one_core=TARGET_SHARE,
        steady_share_of_one_core=round(share, 4),
    )
    for row in rows:
        print(f"watched {row['watched_s']:g} s: {row['cpu_s']:.2f} s CPU")
    print(f"steady state: {share:.1%} of one core at {args.rate} Hz, {NODES} idle nodes; {out}")
    return 0 if share <= TARGET_SHARE else 1


if __name__ == "__main__":
    sys.exit(main())
