"""Finding the programs dora-doctor runs (dora, py-spy) and the environment to run them in."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional


def beside_python_or_on_path(name: str) -> Optional[str]:
    """``name`` next to this interpreter first, then on PATH.

    Both dora and py-spy come as pip packages, and ``sudo dora-doctor`` often runs with a
    PATH that lacks the virtual environment's ``bin``: the copy installed alongside
    dora-doctor is the one meant.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def quiet_rust_env(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """``base`` (default: ours) without RUST_BACKTRACE: dora and py-spy are Rust programs,
    and a backtrace after every error line drowns the line that matters."""
    env = dict(os.environ if base is None else base)
    env.pop("RUST_BACKTRACE", None)
    env.pop("RUST_LIB_BACKTRACE", None)
    return env


def option_value(cmdline: List[str], name: str) -> Optional[str]:
    """``--name VALUE`` or ``--name=VALUE`` from another process's command line (how a
    dora daemon or coordinator was started: its machine id, its port)."""
    for i, part in enumerate(cmdline):
        if part == name and i + 1 < len(cmdline):
            return cmdline[i + 1]
        if part.startswith(name + "="):
            return part.split("=", 1)[1]
    return None
