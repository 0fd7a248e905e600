"""dora's own Python examples as a smoke test: no false alarm on code that stops well.

tests/fixtures/dora-examples/ holds minimal copies of dora-rs/dora's examples (README.md there
names the commit and the stand-ins for camera and model). Each is started on the private dora
1.1.0 and stopped with ``inspect --stop``: every node must be found, be Python, and end
``clean`` with cause ``none``, and nothing may be advised. The grace is 5 s rather than 2 s:
a clean stop ends as soon as the node is done, so this costs nothing when the nodes are right,
and on a loaded 2-core machine a well-behaved node has outlasted 2 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterator, List

import pytest
from helpers import run_doctor

from dora_doctor.dora.private import LocalDora, locate_dora

EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "dora-examples"

pytestmark = pytest.mark.dora


@pytest.fixture(scope="module")
def shared_dora(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDora]:
    if locate_dora() is None:
        if os.environ.get("DORA_DOCTOR_REQUIRE_DORA"):
            pytest.fail("dora is required here (make test installs dora-rs-cli==1.1.0)")
        pytest.skip("dora is not installed (pip install dora-rs-cli==1.1.0 dora-rs==1.1.0)")
    local = LocalDora.start(tmp_path_factory.mktemp("examples") / "dora")
    try:
        yield local
    finally:
        local.close()


def node_ids(yml: Path) -> List[str]:
    return re.findall(r"^  - id: (\S+)$", yml.read_text(), re.MULTILINE)


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_example_stops_clean(shared_dora: LocalDora, tmp_path: Path, example: str) -> None:
    target = tmp_path / example
    shutil.copytree(EXAMPLES / example, target)
    yml = target / "dataflow.yml"
    ids = node_ids(yml)
    assert ids, "no nodes in the example"
    name = example.replace("python-", "ex-")
    shared_dora.start_dataflow(yml, name)
    shared_dora.wait_running(name, nodes=len(ids))
    result = run_doctor(
        "inspect",
        name,
        "--stop",
        "--grace-duration",
        "5s",
        "--stop-after",
        "2s",
        "--json",
        env=shared_dora.env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (dataflow,) = json.loads(result.stdout)["dataflows"]
    nodes = {node["id"]: node for node in dataflow["nodes"]}
    assert sorted(nodes) == sorted(ids)
    for node_id, node in nodes.items():
        assert node["python"] is True and node["samples"] > 0, node
        assert (node["outcome"], node["cause"]) == ("clean", "none"), (node_id, node["evidence"])
        assert node["advice"] == [], (node_id, node["advice"])
