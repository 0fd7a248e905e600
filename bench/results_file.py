"""Writing a benchmark's results with the facts of the machine they were taken on."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Dict, List

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, results: List[Dict[str, Any]], **extra: Any) -> Path:
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "taken": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
        "results": results,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    return out
