"""postmortem on a large realistic log against `grep -c` for the kill pattern, same files,
same run; and postmortem's peak memory.

Generates (once, cached in a temp dir) SIZE of mixed dora 1.1.0 daemon JSON lines and node
log lines, built from real fixture lines, with a few hundred stop / SIGTERM / SIGKILL events
spread through it. Target: postmortem ≤ 3 × grep's time, memory < 100 MB.
Results: bench/results/postmortem_speed.json.

    python bench/postmortem_speed.py [--size-mb 1024]
"""

from __future__ import annotations

import argparse
import json
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


def timed(argv: List[str]) -> Dict[str, Any]:
    began = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    return {"seconds": round(elapsed, 3), "stdout": result.stdout, "returncode": result.returncode}


def peak_rss_mb_of(argv: List[str]) -> float:
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    return round(int(out.stdout.strip()) / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dora-doctor-bench-") as tmp:
        log = Path(tmp) / "dora-daemon.txt"
        kills = generate(log, args.size_mb << 20, args.events)
        size = log.stat().st_size
        subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
        load_before = load()
        grep = timed(["grep", "-c", KILL, str(log)])
        doctor_argv = [sys.executable, "-m", "dora_doctor", "postmortem", str(log), "--json"]
        doctor = timed(doctor_argv)
        grep_again = timed(["grep", "-c", KILL, str(log)])
        from dora_doctor.logs.patterns import CANDIDATE_ANCHORS

        words = [arg for a in CANDIDATE_ANCHORS for arg in ("-e", a.decode())]
        grep_same_work = timed(["grep", "-a", "-c", "-F", *words, str(log)])
        found = json.loads(doctor["stdout"]) if doctor["returncode"] == 0 else {}
        killed = sum(found.get("postmortem", {}).get("summary", {}).get("killed", {}).values())
        memory = peak_rss_mb_of(doctor_argv)
    grep_s = min(grep["seconds"], grep_again["seconds"])
    row = {
        "size_bytes": size,
        "grep_c_kill_s": grep_s,
        "grep_count": int(grep["stdout"].strip() or 0),
        "postmortem_s": doctor["seconds"],
        "ratio_to_grep": round(doctor["seconds"] / grep_s, 2),
        "grep_c_F_same_anchors_s": grep_same_work["seconds"],
        "ratio_to_grep_same_anchors": round(doctor["seconds"] / grep_same_work["seconds"], 2),
        "kill_lines_written": kills,
        "postmortem_peak_rss_mb": memory,
        "postmortem_killed_nodes": killed,
        "loadavg_before": load_before,
        "loadavg_after": load(),
    }
    print(json.dumps(row))
    out = write_results("postmortem_speed", [row], target_ratio=3.0, target_memory_mb=100)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
