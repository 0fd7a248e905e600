"""Shared fixtures: a private dora instance and a scratch copy of ``samples/``.

End-to-end tests run real dora processes; each test gets its own coordinator and daemon on free
loopback ports (see ``dora_doctor.localdora``), so tests never touch a user's dora on port 6013
nor each other, and ``close()`` in a ``finally`` leaves no process behind even when a test fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from dora_doctor.dora.private import LocalDora, locate_dora

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture
def local_dora(tmp_path: Path) -> Iterator[LocalDora]:
    """A started :class:`LocalDora` in ``tmp_path/dora``; always closed afterwards."""
    if locate_dora() is None:
        if os.environ.get("DORA_DOCTOR_REQUIRE_DORA"):
            pytest.fail("dora is required here (make test installs dora-rs-cli==1.1.0)")
        pytest.skip("dora is not installed (pip install dora-rs-cli==1.1.0 dora-rs==1.1.0)")
    dora = LocalDora.start(tmp_path / "dora")
    try:
        yield dora
    finally:
        dora.close()


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """A copy of ``samples/``: dora writes node logs to ``<dataflow dir>/out/``, keep them here."""
    target = tmp_path / "samples"
    shutil.copytree(SAMPLES, target, ignore=shutil.ignore_patterns("out", "__pycache__"))
    return target


@pytest.fixture(autouse=True)
def _own_history(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands add their stops to the history DB by default: a test's go to a temporary
    $XDG_DATA_HOME (inherited by the CLI processes it starts), never the user's own."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
