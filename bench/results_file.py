"""Writing a benchmark's results with the facts of the machine they were taken on.

Every file names the machine (CPU model, cores, Python, dora and py-spy versions), the code
it measured (``source``: the git commit, whether the tree had uncommitted changes, and the
versions of dora-doctor, py-spy and dora as the tools themselves report them) and the load
average when it was written, and the benches put ``load()`` in each row too: on a shared
2-core machine a number means little without the load it was taken under, and nothing
without the code it was taken of.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parent.parent


def load() -> List[float]:
    """The 1, 5 and 15 minute load averages, rounded for reading."""
    return [round(x, 2) for x in os.getloadavg()]


def cpu_model() -> Optional[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(distribution: str) -> Optional[str]:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover (Python < 3.8)
        return None
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def machine() -> Dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "dora_rs_cli": _version("dora-rs-cli"),
        "py_spy": _version("py-spy"),
    }


def _output(*argv: str) -> Optional[str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=ROOT)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _tool_version(name: str) -> Optional[str]:
    """``NAME --version`` of the executable beside this Python (as the benches run it),
    else on PATH: the version that ran, not the one a package index names."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    text = _output(found, "--version") if found else None
    match = re.search(r"\d+\.\d+\.\d+\S*", text or "")
    return match.group() if match else None


def source() -> Dict[str, Any]:
    """The code and tools measured: a result is only comparable with one taken of the same."""
    sys.path.insert(0, str(ROOT))
    try:
        from dora_doctor import __version__
    finally:
        sys.path.remove(str(ROOT))
    changes = _output("git", "status", "--porcelain", "--", ".", ":!bench/results")
    return {
        "git_commit": _output("git", "rev-parse", "HEAD"),
        "git_dirty": None if changes is None else bool(changes),
        "dora_doctor": __version__,
        "py_spy": _tool_version("py-spy"),
        "dora": _tool_version("dora"),
    }


def write_results(name: str, results: List[Dict[str, Any]], **extra: Any) -> Path:
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": machine(),
        "source": source(),
        "taken": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_at_end": load(),
        **extra,
        "results": results,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    return out
