"""CLI start-up: ``dora-doctor --help`` against ``python -c pass``, alternating, same run.

Both run with this virtualenv's interpreter (the console script's own), REPS times each,
interleaved so a busy moment hits both; the medians are compared. ``inspect --help`` is
timed too, since a subcommand's help builds more of the CLI. Target: ≤ 0.3 s extra.
Results: bench/results/cli_startup.json.

    python bench/cli_startup.py [--reps 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402

from dora_doctor.executables import beside_python_or_on_path


def seconds(argv: List[str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True)
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    script = beside_python_or_on_path("dora-doctor")
    doctor = [script] if script else [sys.executable, "-m", "dora_doctor"]
    commands: Dict[str, List[str]] = {
        "python_c_pass": [sys.executable, "-c", "pass"],
        "help": [*doctor, "--help"],
        "inspect_help": [*doctor, "inspect", "--help"],
    }
    load_before = load()
    for argv in commands.values():  # warm the page cache and .pyc files
        seconds(argv)
    times: Dict[str, List[float]] = {name: [] for name in commands}
    for _ in range(args.reps):
        for name, argv in commands.items():
            times[name].append(seconds(argv))
    median = {name: statistics.median(values) for name, values in times.items()}
    row = {
        "reps": args.reps,
        "python_c_pass_s": round(median["python_c_pass"], 3),
        "help_s": round(median["help"], 3),
        "inspect_help_s": round(median["inspect_help"], 3),
        "help_extra_s": round(median["help"] - median["python_c_pass"], 3),
        "inspect_help_extra_s": round(median["inspect_help"] - median["python_c_pass"], 3),
        "help_s_min": round(min(times["help"]), 3),
        "help_s_max": round(max(times["help"]), 3),
        "loadavg_before": load_before,
        "loadavg_after": load(),
    }
    print(json.dumps(row), flush=True)
    out = write_results("cli_startup", [row], target_extra_s=0.3)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
