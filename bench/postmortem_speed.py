"""postmortem on large logs against `grep -c`, same files, same run; and its peak memory.

Two cases, each SIZE of real dora 1.1.0 lines (from the fixtures), written to a temp dir:

- sparse: mixed daemon JSON lines and node log lines with a few hundred stop / SIGTERM /
  SIGKILL events spread through it (a long, mostly quiet log). Target: postmortem ≤ 3 ×
  `grep -c` of the kill line.
- dense: nothing but the daemon's node-exit lines (every line an event: the worst case for
  memory, and for time, since every line is parsed). Its `grep -c` ratio is recorded, with
  no target: grep counts lines, postmortem parses each one.

Target for both: peak RSS (postmortem or its ripgrep, the larger) < 100 MB.
Results: bench/results/postmortem_speed.json, one row per case, with the load average.

    python bench/postmortem_speed.py [--size-mb 1024] [--cases sparse,dense]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "dora-1.1.0" / "detached-stop-grace-2s"
KILL = "was killed due to not stopping within the"


def noise_lines() -> List[str]:
    """Ordinary lines a busy daemon and its nodes write (not about stops)."""
    node_log = ROOT / "tests" / "fixtures" / "dora-1.1.0" / "node-log-queue-full"
    lines = [ln for p in sorted(node_log.rglob("*.jsonl")) for ln in p.read_text().splitlines()]
    daemon = [ln for ln in (FIX / "dora-daemon.txt").read_text().splitlines() if "INFO" in ln]
    from dora_doctor.logs.patterns import CANDIDATE_ANCHORS

    # a real log says "stop" or "exit" a few times per run, not in every block
    quiet = [ln for ln in lines + daemon if not any(a in ln.encode() for a in CANDIDATE_ANCHORS)]
    return [ln for ln in quiet if ln.strip()] or ['{"level":"INFO","msg":"tick"}']


def event_lines() -> List[str]:
    return [
        ln
        for name in ("dora-daemon.txt", "dora-coordinator.txt")
        for ln in (FIX / name).read_text().splitlines()
        if "stop dataflow" in ln or "exited with error" in ln or "grace period" in ln
    ]


def generate(path: Path, size: int, events_wanted: int) -> int:
    rng = random.Random(7)
    noise, events = noise_lines(), event_lines()
    block = "\n".join(rng.choice(noise) for _ in range(2000)) + "\n"
    blocks = max(1, size // len(block))
    every = max(1, blocks // events_wanted)
    kills = 0
    with open(path, "w") as out:
        for i in range(blocks):
            out.write(block)
            if i % every == 0:
                chosen = rng.choice(events)
                kills += KILL in chosen
                out.write(chosen + "\n")
    return kills


def generate_dense(path: Path, size: int) -> int:
    """Only node-exit lines, as dora 1.1.0's daemon writes them; returns how many."""
    exits = [ln for ln in (FIX / "dora-daemon.txt").read_text().splitlines() if EXIT in ln]
    block = ("\n".join(exits) + "\n").encode() * 1000
    copies = max(1, size // len(block))
    with open(path, "wb") as out:
        for _ in range(copies):
            out.write(block)
    return copies * 1000 * len(exits)


EXIT = "node exited with error"


def timed(argv: List[str]) -> Dict[str, Any]:
    """Wall time, output and peak RSS of one run (the child or its ripgrep, the larger:
    wait4's usage covers the children it waited for)."""
    began = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read().decode()
    return {
        "seconds": round(elapsed, 3),
        "stdout": stdout,
        "returncode": proc.returncode,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def measure(case: str, log: Path, written: int) -> Dict[str, Any]:
    """One case: grep -c and postmortem side by side on the same warm file."""
    pattern = KILL if case == "sparse" else EXIT
    size = log.stat().st_size
    subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
    load_before = load()
    grep = timed(["grep", "-c", pattern, str(log)])
    doctor_argv = [sys.executable, "-m", "dora_doctor", "postmortem", str(log), "--json"]
    doctor = timed(doctor_argv)
    grep_again = timed(["grep", "-c", pattern, str(log)])
    from dora_doctor.logs.patterns import CANDIDATE_ANCHORS

    words = [arg for a in CANDIDATE_ANCHORS for arg in ("-e", a.decode())]
    grep_same_work = timed(["grep", "-a", "-c", "-F", *words, str(log)])
    found = json.loads(doctor["stdout"]) if doctor["returncode"] == 0 else {}
    pm = found.get("postmortem", {})
    killed = sum(pm.get("summary", {}).get("killed", {}).values())
    memory = doctor["peak_rss_mb"]  # the same run as the time
    grep_s = min(grep["seconds"], grep_again["seconds"])
    return {
        "case": case,
        "size_bytes": size,
        "grep_pattern": pattern,
        "grep_c_kill_s": grep_s,
        "grep_count": int(grep["stdout"].strip() or 0),
        "postmortem_s": doctor["seconds"],
        "postmortem_returncode": doctor["returncode"],
        "ratio_to_grep": round(doctor["seconds"] / grep_s, 2),
        "grep_c_F_same_anchors_s": grep_same_work["seconds"],
        "ratio_to_grep_same_anchors": round(doctor["seconds"] / grep_same_work["seconds"], 2),
        "lines_written": written if case == "dense" else None,
        "kill_lines_written": written if case == "sparse" else None,
        "postmortem_events": pm.get("inputs", {}).get("events"),
        "postmortem_events_omitted": pm.get("inputs", {}).get("events_omitted"),
        "postmortem_peak_rss_mb": memory,
        "postmortem_killed_nodes": killed,
        "loadavg_before": load_before,
        "loadavg_after": load(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--cases", default="sparse,dense")
    args = parser.parse_args()
    rows = []
    for case in args.cases.split(","):
        with tempfile.TemporaryDirectory(prefix="dora-doctor-bench-") as tmp:
            log = Path(tmp) / "dora-daemon.txt"
            if case == "sparse":
                written = generate(log, args.size_mb << 20, args.events)
            else:
                written = generate_dense(log, args.size_mb << 20)
            row = measure(case, log, written)
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = write_results("postmortem_speed", rows, target_ratio=3.0, target_memory_mb=100)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
