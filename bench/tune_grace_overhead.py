"""tune-grace's own overhead: its wall time over the time the rehearsal has to take.

What a rehearsal cannot avoid is, per run, the warm-up plus the slowest node's stop→exit;
everything else (starting the dataflow, waiting for its processes, attaching py-spy,
analysing) is overhead. Target: ratio ≤ 1.2. Measured on a private dora that is started
before the clock runs, with samples/slow_cleanup.yml (stop→exit ≈ 3 s) and
samples/well_behaved.yml (≈ 0.1 s). Results: bench/results/tune_grace_overhead.json.

    python bench/tune_grace_overhead.py [--runs 5] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict

from dora_doctor.dora.private import LocalDora

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def measure(dora: LocalDora, yml: Path, runs: int, warmup: float) -> Dict[str, Any]:
    load_before = load()
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "dora_doctor", "tune-grace", str(yml), "--runs", str(runs),
         "--warmup", f"{warmup:g}s", "--ceiling", "10s", "--json"],
        env=dora.env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = time.monotonic() - began
    data = json.loads(result.stdout)
    needed = sum(
        warmup + max(n["stop_duration_s"] or 0.0 for n in run["report"]["dataflows"][0]["nodes"])
        for run in data["runs"]
    )
    return {
        "dataflow": yml.name,
        "runs": runs,
        "warmup_s": warmup,
        "wall_s_including_cli_start": round(wall, 2),
        "wall_s_rehearsal": data["wall_s"],
        "needed_s": round(needed, 2),
        "ratio": round(wall / needed, 3),
        "ratio_rehearsal_only": data["overhead_ratio"],
        "suggestion": data["suggestion"],
        "loadavg_before": load_before,
        "loadavg_after": load(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples"
        shutil.copytree(ROOT / "samples", samples, ignore=shutil.ignore_patterns("out"))
        with LocalDora.start(Path(tmp) / "dora") as dora:
            for name in ("slow_cleanup.yml", "well_behaved.yml"):
                row = measure(dora, samples / name, args.runs, args.warmup)
                print(json.dumps(row), flush=True)
                results.append(row)
    out = write_results("tune_grace_overhead", results, target_ratio=1.2)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
