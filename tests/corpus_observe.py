"""Stop every corpus scenario for real and print what happened (for samples/README.md and the
recordings under tests/fixtures/recordings/corpus/): ``python tests/corpus_observe.py
[--runs N] [--keep DIR] [--dora VERSION] [NAME ...]``; ``--dora 0.5.0`` runs the default
cell's scenarios on another release line's cached venv, as ``tests/test_corpus_lines.py``."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import SCENARIOS, Scenario, leftovers, observe  # noqa: E402
from dora_versions import CELLS, DORA_OLD, dora_venv, node_venv  # noqa: E402

from dora_doctor.dora.private import LocalDora  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def start(cell: str, workdir: Path, line: Optional[str] = None) -> LocalDora:
    if cell == "default" and line:
        (python,) = [c.python for c in CELLS if c.dora == line and c.own_venv]
        return LocalDora.start(workdir, dora=str(dora_venv(line, python).dora))
    if cell == "py310":
        return LocalDora.start(workdir, dora=str(dora_venv(*DORA_OLD).dora))
    if cell in ("py312", "py313"):
        minor = "3." + cell[-2:]
        return LocalDora.start(workdir, node_python=node_venv(minor, "1.1.0").python)
    return LocalDora.start(workdir)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--dora", help="release line for the default cell (0.3.13 … 1.0.1)")
    args = parser.parse_args()
    chosen: List[Scenario] = [SCENARIOS[n] for n in (args.names or list(SCENARIOS))]
    by_cell: Dict[str, List[Scenario]] = {}
    for s in chosen:
        by_cell.setdefault(s.cell, []).append(s)
    tmp = Path(tempfile.mkdtemp(prefix="corpus-"))
    samples = tmp / "samples"
    shutil.copytree(SAMPLES, samples, ignore=shutil.ignore_patterns("out", "__pycache__"))
    for cell, scenarios in by_cell.items():
        local = start(cell, tmp / f"dora-{cell}", args.dora)
        try:
            for scenario in scenarios:
                for i in range(args.runs):
                    name = f"{scenario.name.replace('_', '-')}-{i}"
                    record = tmp / f"{name}.ddrec"
                    run = observe(local, samples, scenario, record, name)
                    left = leftovers(run)
                    row = {
                        "scenario": scenario.name,
                        "run": i,
                        "dora": local.version,
                        "doctor_exit": run.doctor_exit,
                        "fates": {k: vars(v) for k, v in run.fates.items()},
                        "dora_lines": run.dora_lines,
                        "leftovers": left,
                        "nodes": {
                            k: {
                                key: v.get(key)
                                for key in (
                                    "outcome",
                                    "cause",
                                    "stop_duration_s",
                                    "python_version",
                                    "gil",
                                    "evidence",
                                    "advice",
                                    "top_frame",
                                    "skipped",
                                )
                            }
                            for k, v in run.nodes.items()
                        },
                    }
                    if run.doctor_exit != 0:
                        row["stderr"] = run.doctor_stderr[-2000:]
                    print(json.dumps(row), flush=True)
                    if args.keep and i == 0:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        if record.exists():
                            shutil.copy(record, args.keep / f"{scenario.name}.ddrec")
                        logs = args.keep / f"{scenario.name}-logs"
                        logs.mkdir(exist_ok=True)
                        for log in (local.workdir / "out").glob("dora-*.txt"):
                            shutil.copy(log, logs / log.name)
        finally:
            local.close()


if __name__ == "__main__":
    main()
