"""Writing a benchmark's results with the facts of the machine they were taken on.

Every file names the machine (CPU model, cores, Python, dora and py-spy versions) and the
load average when it was written, and the benches put ``load()`` in each row too: on a
shared 2-core machine a number means little without the load it was taken under.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

RESULTS = Path(__file__).resolve().parent / "results"


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


def write_results(name: str, results: List[Dict[str, Any]], **extra: Any) -> Path:
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": machine(),
        "taken": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_at_end": load(),
        **extra,
        "results": results,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    return out
