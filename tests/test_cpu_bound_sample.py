"""samples/cpu_bound.yml, the overhead benchmark's target, does what its docstring says:
it reports its throughput to CPU_BOUND_OUT, stops cleanly, and dora-doctor sees its
``counter`` thread holding the GIL in ``count``. Real dora, real node, real py-spy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Tuple

import pytest
from helpers import run_doctor, wait_for

from dora_doctor.dora.private import LocalDora

pytestmark = pytest.mark.dora


def buckets(path: Path) -> List[Tuple[float, int, float]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        end, iterations, seconds = line.split()
        rows.append((float(end), int(iterations), float(seconds)))
    return rows


def test_cpu_bound_reports_throughput_and_stops_clean(
    local_dora: LocalDora, samples: Path, tmp_path: Path
) -> None:
    out = tmp_path / "throughput.txt"
    yml = samples / "cpu_bound.yml"
    yml.write_text(yml.read_text() + f"    env:\n      CPU_BOUND_OUT: {out}\n")
    local_dora.start_dataflow(yml, "cpu-bound")
    local_dora.wait_running("cpu-bound", nodes=1)
    wait_for(lambda: len(buckets(out)) >= 5, 60, "throughput lines")

    rows = buckets(out)
    assert all(iterations > 0 and seconds >= 0.1 for _, iterations, seconds in rows)
    ends = [end for end, _, _ in rows]
    assert ends == sorted(ends)

    # while it runs: the GIL is the counter's, in count
    watched = run_doctor("inspect", "cpu-bound", "--duration", "3s", "--json", env=local_dora.env)
    assert watched.returncode == 0, watched.stderr
    (running,) = json.loads(watched.stdout)["dataflows"][0]["nodes"]
    assert running["gil"]["held_share"] > 0.5
    holder = running["gil"]["holders"][0]
    assert (holder["thread"], holder["function"]) == ("counter", "count")
    assert holder["file"].endswith("cpu_bound.py")

    # at a stop: it reacts and exits by itself
    stopped = run_doctor(
        "inspect", "cpu-bound", "--stop", "--grace-duration", "2s", "--stop-after", "1s",
        "--json", env=local_dora.env,
    )  # fmt: skip
    assert stopped.returncode == 0, stopped.stderr
    (counter,) = json.loads(stopped.stdout)["dataflows"][0]["nodes"]
    assert (counter["id"], counter["outcome"], counter["cause"]) == ("counter", "clean", "none")
