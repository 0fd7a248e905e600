"""How soon after dora writes its stop line does `watch` take its first full-rate sample of
each node? Target (issue 15): at most 0.3 s.

A private dora, one `dora-doctor watch` (baseline: stacks only at 1 Hz, never pausing); STOPS
times, a dataflow whose Python node is slow to stop (samples/slow_cleanup.yml) is started,
left running until the watch has its baseline samples plus RUN seconds, and stopped with
`dora stop --grace-duration 2s`. Per node and stop, from the recording the watch kept:

* the stop line: the timestamp dora's coordinator wrote on "successfully send stop dataflow"
  (what the recording's stop request carries);
* the first full-rate sample: the earliest span of the first full-rate stacks segment
  (more than a quarter of --rate samples per second) that began after the stop line. A span's
  time is the recorder's launch plus py-spy's own timestamp, which counts from py-spy's
  start (measured: the first sample of a fresh `py-spy record` is 75-135 ms after launch on
  this machine), so it misses only the exec of py-spy itself (a few ms).

p50/p95/max over every node and stop. Results: bench/results/watch_first_sample.json.

    python bench/watch_first_sample.py [--stops 8] [--run 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402

from dora_doctor.dora.private import LocalDora  # noqa: E402
from dora_doctor.logs import events as logevents  # noqa: E402
from dora_doctor.recording.model import Recording  # noqa: E402
from dora_doctor.recording.reader import read_recording  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.3
RATE = 100  # watch's default --rate
# a node that takes its 2 s grace to stop (dora SIGTERMs it): nodes that end within a few
# ms of STOP leave their last segment without spans (py-spy loses the target mid-segment)
DATAFLOW = "slow_cleanup.yml"
NODES = ("saver",)


class Watch:
    def __init__(self, env: Dict[str, str], db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dora_doctor", "watch", "--db", str(db), "--poll", "0.5s"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: List[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_said(self, text: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            time.sleep(0.1)
        raise SystemExit(f"the watch never said {text!r}:\n" + "\n".join(self.lines))

    def end(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)


def sampled(recording: Path) -> bool:
    if not recording.exists():
        return False
    try:
        return {s.node for s in read_recording(recording).stacks} >= set(NODES)
    except Exception:  # noqa: BLE001 (a line the follower is still writing)
        return False


def stop_line_time(recording: Recording) -> Optional[float]:
    times = [
        e.time
        for e in recording.logs
        if e.kind == logevents.STOP_REQUEST and e.source == "coordinator"
    ]
    return min(times) if times else None


def first_full_rate(recording: Recording, node: str, after: float) -> Optional[float]:
    for segment in sorted(recording.stacks, key=lambda s: s.start):
        if segment.node != node or segment.start < after:
            continue
        if segment.ticks / max(segment.end - segment.start, 1e-3) < RATE / 4:
            continue  # a baseline segment
        starts = [span.start for track in segment.threads for span in track.spans]
        if starts:
            return min(starts)
    return None


def pct(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stops", type=int, default=8)
    parser.add_argument("--run", type=float, default=3.0)
    args = parser.parse_args()
    rows: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="watch-first-") as tmp:
        folder = Path(tmp)
        shutil.copytree(ROOT / "samples", folder / "samples")
        dora = LocalDora.start(folder / "dora")
        watch = Watch(dict(os.environ, **dora.env), folder / "history" / "history.sqlite3")
        try:
            for stop in range(args.stops):
                name = f"first{stop}"
                before = load()
                dora.start_dataflow(folder / "samples" / DATAFLOW, name)
                line = watch.wait_said(f"following {name} ")
                path = Path(line.rsplit("recording to ", 1)[1])
                deadline = time.monotonic() + 90
                while not sampled(path) and time.monotonic() < deadline:
                    time.sleep(0.2)
                time.sleep(args.run)
                dora.stop_dataflow(name, "2s")
                watch.wait_said(f"{name}: ")
                recording = read_recording(path)
                stopped = stop_line_time(recording)
                for node in NODES:
                    first = first_full_rate(recording, node, stopped) if stopped else None
                    before_stop = [
                        s
                        for s in recording.stacks
                        if s.node == node and stopped is not None and s.start < stopped
                    ]
                    rows.append(
                        {
                            "stop": stop,
                            "node": node,
                            "stop_line": stopped,
                            "first_full_rate_sample": first,
                            "after_stop_line_s": round(first - stopped, 4)
                            if first is not None and stopped is not None
                            else None,
                            "baseline_segments_before_stop": len(before_stop),
                            "loadavg_before": before,
                        }
                    )
                    print(f"stop {stop} {node}: {rows[-1]['after_stop_line_s']} s")
        finally:
            watch.end()
            dora.close()
    measured = [r["after_stop_line_s"] for r in rows if r["after_stop_line_s"] is not None]
    summary = {
        "stops": args.stops,
        "measured": len(measured),
        "missing": len(rows) - len(measured),
        "p50_s": round(statistics.median(measured), 4) if measured else None,
        "p95_s": round(pct(measured, 0.95), 4) if measured else None,
        "max_s": round(max(measured), 4) if measured else None,
    }
    out = write_results("watch_first_sample", rows, target_s=TARGET_S, summary=summary)
    print(f"first full-rate sample after dora's stop line: {summary}; {out}")
    ok = measured and not summary["missing"] and summary["max_s"] <= TARGET_S
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
