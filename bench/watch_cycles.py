"""Does `watch` miss stops? N consecutive start/stop cycles of samples/well_behaved.yml on a
private dora, each dataflow running RUN seconds after its nodes are up, then
`dora stop --grace-duration 2s`; at the end, the stops in the watch's history are counted
against the stops dora's coordinator log shows. Target (issue 15): none missed over 100.
Results: bench/results/watch_cycles.json.

    python bench/watch_cycles.py [--cycles 100] [--run 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402

from dora_doctor.dora.private import LocalDora  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STOP_LINE = "successfully send stop dataflow"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--run", type=float, default=2.0)
    args = parser.parse_args()
    before = load()
    with tempfile.TemporaryDirectory(prefix="watch-cycles-") as tmp:
        folder = Path(tmp)
        shutil.copytree(ROOT / "samples", folder / "samples")
        dora = LocalDora.start(folder / "dora")
        db = folder / "history" / "history.sqlite3"
        log = open(folder / "watch.log", "w")  # noqa: SIM115
        watch = subprocess.Popen(
            [sys.executable, "-m", "dora_doctor", "watch", "--db", str(db), "--poll", "0.5s"],
            env=dict(os.environ, **dora.env),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        began = time.monotonic()
        try:
            for cycle in range(args.cycles):
                name = f"cycle{cycle}"
                dora.start_dataflow(folder / "samples" / "well_behaved.yml", name)
                dora.wait_running(name, nodes=2, timeout=60)
                time.sleep(args.run)
                dora.stop_dataflow(name, "2s")
            time.sleep(3.0)  # the last follower's recording and entry
        finally:
            watch.send_signal(signal.SIGTERM)
            watch.wait(120)
            log.close()
            coordinator = next((folder / "dora").rglob("dora-coordinator.txt"), None)
            dora.close()
        wall = time.monotonic() - began
        shown = coordinator.read_text().count(STOP_LINE) if coordinator else None
        recorded = sqlite3.connect(str(db)).execute("SELECT count(*) FROM stops").fetchone()[0]
    row = {
        "cycles": args.cycles,
        "run_s": args.run,
        "stops_in_dora_logs": shown,
        "stops_in_history": recorded,
        "missed": (shown - recorded) if shown is not None else None,
        "wall_s": round(wall, 1),
        "loadavg_before": before,
    }
    out = write_results("watch_cycles", [row], target_missed=0)
    print(f"{args.cycles} cycles: dora's logs show {shown} stops, the history holds {recorded}")
    print(f"written {out}")
    return 0 if row["missed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
