"""Does `watch` miss stops? N consecutive start/stop cycles of samples/well_behaved.yml on a
private dora, each dataflow running RUN seconds after its nodes are up, then
`dora stop --grace-duration 2s`; at the end, the stops in the watch's history are counted
against the stops dora's coordinator log shows. Target (issue 15): none missed over 100.
With --restarts each cycle first restarts one node (`dora node restart talker`, waiting up
to RESTART_WAIT_S for the watch to record it, as a user would not stop at once), so both
kinds are counted: dora's "successfully restarted node" lines against the history's
restarts. Results: bench/results/watch_cycles.json (watch_cycles_restarts.json).

    python bench/watch_cycles.py [--cycles 100] [--run 2] [--restarts]
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
RESTART_LINE = "successfully restarted node"
# how long a cycle waits for the watch to record a node restart before it stops the dataflow
RESTART_WAIT_S = 30.0


def restarts_in(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(str(db))
    try:
        return int(conn.execute("SELECT count(*) FROM stops WHERE kind = 'restart'").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--run", type=float, default=2.0)
    parser.add_argument("--restarts", action="store_true", help="a node restart per cycle")
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
        connect = dora.client.connection_args()
        began = time.monotonic()
        try:
            for cycle in range(args.cycles):
                name = f"cycle{cycle}"
                dora.start_dataflow(folder / "samples" / "well_behaved.yml", name)
                dora.wait_running(name, nodes=2, timeout=60)
                time.sleep(args.run)
                if args.restarts:
                    had = restarts_in(db)
                    dora.cli("node", "restart", "talker", "-d", name, "--grace", "1s", *connect)
                    deadline = time.monotonic() + RESTART_WAIT_S
                    while restarts_in(db) == had and time.monotonic() < deadline:
                        time.sleep(0.5)
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
        text = coordinator.read_text() if coordinator else None
        shown = text.count(STOP_LINE) + text.count(RESTART_LINE) if text is not None else None
        recorded = sqlite3.connect(str(db)).execute("SELECT count(*) FROM stops").fetchone()[0]
        restarts = restarts_in(db)
    row = {
        "cycles": args.cycles,
        "run_s": args.run,
        "node_restarts": args.restarts,
        "stops_in_dora_logs": shown,
        "restarts_in_dora_logs": text.count(RESTART_LINE) if text is not None else None,
        "stops_in_history": recorded,
        "restarts_in_history": restarts,
        "missed": (shown - recorded) if shown is not None else None,
        "wall_s": round(wall, 1),
        "loadavg_before": before,
    }
    name = "watch_cycles_restarts" if args.restarts else "watch_cycles"
    out = write_results(name, [row], target_missed=0)
    print(
        f"{args.cycles} cycles: dora's logs show {shown} stops "
        f"({row['restarts_in_dora_logs']} node restarts), the history holds {recorded} "
        f"({restarts} restarts)"
    )
    print(f"written {out}")
    return 0 if row["missed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
