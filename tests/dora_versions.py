"""Virtual environments for the version matrix: one per dora release and one per node Python.

Why venvs of their own: dora 0.3.x and 1.x cannot share an environment (``dora-rs-cli`` and the
node API ``dora-rs`` must come from the same release, and a 0.3.x daemon starts nodes that must
import the 0.3.x ``dora``), and node samples on Python 3.10 or 3.13 need an interpreter of that
version with ``dora-rs`` installed. Creating one takes tens of seconds (mostly pip downloading
pyarrow), so they are kept under a cache directory and reused: ``DORA_DOCTOR_VENV_CACHE``, or
``$XDG_CACHE_HOME/dora-doctor/dora-venvs`` (default ``~/.cache/...``).

A venv cannot be moved once made (its scripts name their interpreter by absolute path), so it
is built where it will stay, under an exclusive lock, and marked complete only at the end: a
half-made one (interrupted run, failed pip) is removed and made again by the next caller.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from dora_doctor.executables import quiet_rust_env

_COMPLETE = ".dora-doctor-complete"
_PIP_TIMEOUT_S = 900.0


class VenvError(RuntimeError):
    """A venv could not be made (no such interpreter, pip failed)."""


@dataclass(frozen=True)
class Venv:
    path: Path
    created_s: Optional[float]  # seconds it took to make now, None when it was reused

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def dora(self) -> Path:
        return self.bin / "dora"


def cache_dir() -> Path:
    explicit = os.environ.get("DORA_DOCTOR_VENV_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dora-doctor" / "dora-venvs"


def find_python(minor: str) -> Optional[Path]:
    """A CPython ``minor`` (``"3.10"``) interpreter: pyenv's first, then ``pythonX.Y`` on PATH.

    pyenv's own copies are preferred because the PATH one may be a shim that runs another
    version, or a distribution build without the venv module.
    """
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == minor:
        base = getattr(sys, "_base_executable", None) or sys.executable
        return Path(base)
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pattern = root / "versions" / f"{minor}.*" / "bin" / f"python{minor}"
    for candidate in sorted(glob.glob(str(pattern))):
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    found = shutil.which(f"python{minor}")
    return Path(found) if found else None


def ensure_venv(name: str, python: Path, requirements: List[str]) -> Venv:
    """The venv ``name`` under :func:`cache_dir` with ``requirements`` pip-installed into it.

    Reused when a complete one exists; else made under a lock (another test process may be
    making the same one) with ``python -m venv`` and ``pip install`` (argument lists, no shell).
    """
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(path):
            missing = _missing(path, requirements)
            if not missing:
                return Venv(path, None)
            # a requirement added since the venv was made (numpy for the corpus): install only
            # that, seconds instead of a new venv
            started = time.monotonic()
            _pip_install(path, missing)
            (path / _COMPLETE).write_text(" ".join(requirements) + "\n")
            return Venv(path, time.monotonic() - started)
        shutil.rmtree(path, ignore_errors=True)
        started = time.monotonic()
        try:
            _run([str(python), "-m", "venv", str(path)])
            _pip_install(path, requirements)
        except VenvError:
            shutil.rmtree(path, ignore_errors=True)
            raise
        (path / _COMPLETE).write_text(" ".join(requirements) + "\n")
        return Venv(path, time.monotonic() - started)


def _pip_install(path: Path, requirements: List[str]) -> None:
    _run(
        [
            str(path / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ]
    )


def _missing(path: Path, requirements: List[str]) -> List[str]:
    """The requirements the complete venv at ``path`` was not made with (its marker lists
    those it was)."""
    made_with = set((path / _COMPLETE).read_text().split())
    return [r for r in requirements if r not in made_with]


def _complete(path: Path) -> bool:
    # The interpreter link goes stale when the base Python is removed: make it again then.
    return (path / _COMPLETE).is_file() and (path / "bin" / "python").exists()


def _run(args: List[str]) -> None:
    env: Dict[str, str] = quiet_rust_env()
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    try:
        result = subprocess.run(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_PIP_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise VenvError(f"{args[0]} {args[1:3]}: {err}") from err
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise VenvError(f"`{' '.join(args)}` failed (exit {result.returncode}):\n{tail}")


def dora_venv(version: str, python_minor: Optional[str] = None) -> Venv:
    """dora-rs-cli and dora-rs of ``version`` (both pinned: ``dora-rs-cli==0.3.13`` alone
    pulls the newest ``dora-rs``, whose nodes cannot talk to a 0.3.13 daemon), and numpy: the
    corpus's ``numpy_object`` node runs in this venv when a release line runs the corpus
    (dora-rs 1.x depends on numpy; 0.3.x–0.5.x do not)."""
    minor = python_minor or f"{sys.version_info[0]}.{sys.version_info[1]}"
    python = find_python(minor)
    if python is None:
        raise VenvError(f"no Python {minor} interpreter found (pyenv or python{minor} on PATH)")
    return ensure_venv(
        f"dora-{version}-py{minor}",
        python,
        [f"dora-rs-cli=={version}", f"dora-rs=={version}", "numpy"],
    )


def node_venv(python_minor: str, dora_version: str) -> Venv:
    """Python ``python_minor`` with only the node API ``dora-rs`` (nodes need nothing else;
    the daemon is another venv's, of the same dora release)."""
    python = find_python(python_minor)
    if python is None:
        raise VenvError(
            f"no Python {python_minor} interpreter found (pyenv or python{python_minor} on PATH)"
        )
    return ensure_venv(
        f"nodes-dora-rs-{dora_version}-py{python_minor}", python, [f"dora-rs=={dora_version}"]
    )


def require(make: Callable[..., Venv], *args: str) -> Venv:
    """Call a venv maker for a test: a failure skips the test, or fails it when
    ``DORA_DOCTOR_REQUIRE_DORA`` is set (CI must never pass by skipping the matrix)."""
    try:
        venv = make(*args)
    except VenvError as err:
        if os.environ.get("DORA_DOCTOR_REQUIRE_DORA"):
            pytest.fail(f"venv for {args} could not be made: {err}")
        pytest.skip(f"venv for {args} could not be made: {err}")
    if venv.created_s is not None:
        sys.stderr.write(f"\n[dora_versions] made {venv.path} in {venv.created_s:.1f} s\n")
    return venv


# The matrix: one cell per dora release line on PyPI. Each cell names its dora release and the
# Python its nodes run on. dora-rs 1.x requires Python >= 3.11 (cp311-abi3 wheels); 0.4.1
# (cp37-abi3, Requires-Python >= 3.7) and 0.5.0 (>= 3.8) run on the Python of the tests; 0.3.13
# goes with Python 3.10 so a node older than 3.11 is in the matrix too. 1.1.0 is the release the
# rest of the suite runs (dora beside this Python); its cell runs its nodes on Python 3.13.


@dataclass(frozen=True)
class Cell:
    dora: str  # the dora-rs-cli / dora-rs release
    python: str  # the Python its nodes run on
    own_venv: bool  # dora from a venv of its own (else the one beside this Python)


CELLS = (
    Cell("0.3.13", "3.10", True),
    Cell("0.4.1", "3.11", True),
    Cell("0.5.0", "3.11", True),
    Cell("1.0.1", "3.11", True),
    Cell("1.1.0", "3.13", False),
)

# The 0.3.x cell as (dora release, Python of its venv and nodes): the corpus runs its Python 3.10
# scenario there.
DORA_OLD = (CELLS[0].dora, CELLS[0].python)


def cell_venvs(cell: Cell) -> Venv:
    """The venv whose ``dora`` (own_venv) or whose ``python`` (nodes only) the cell runs."""
    if cell.own_venv:
        return dora_venv(cell.dora, cell.python)
    return node_venv(cell.python, cell.dora)


if __name__ == "__main__":  # make (or find) every venv of the matrix, with timings
    for cell in CELLS:
        began = time.monotonic()
        made = cell_venvs(cell)
        how = "made" if made.created_s is not None else "reused"
        print(f"{made.path}: {how} in {time.monotonic() - began:.1f} s")
