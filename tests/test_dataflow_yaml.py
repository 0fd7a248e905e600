"""YAML from outside (a dataflow file, a node's DORA_NODE_CONFIG) is refused before it is
built when it could exhaust memory: a 545-byte alias bomb once took 38 s and 2 GB."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dora_doctor.dora import descriptor, discover, machines
from dora_doctor.dora.descriptor import YamlTooBig, check_expansion, load_yaml
from dora_doctor.errors import DoctorError

FIX = Path(__file__).parent / "fixtures" / "dora-1.1.0"

# 9 levels of 9 aliases: 9**9 strings once expanded, in a few hundred bytes
LEVELS = zip("abcdefgh", "bcdefghi")
BOMB = '"lol"'.join(["a: &a ["] + [","] * 8 + ["]\n"]) + "".join(
    f"{name}: &{name} [{','.join(['*' + prev] * 9)}]\n" for prev, name in LEVELS
)


def test_the_bomb_is_refused_fast_from_its_events() -> None:
    assert len(BOMB) <= 545
    began = time.monotonic()
    with pytest.raises(YamlTooBig, match="expand to more than 100,000"):
        load_yaml(BOMB)
    assert time.monotonic() - began < 0.2


def test_the_expanded_size_counts_what_aliases_stand_for() -> None:
    """Few aliases can still stand for a lot: 4 aliases of a 30,000-value list."""
    big = "a: &a [" + ",".join(["1"] * 30_000) + "]\n"
    load_yaml(big + "b: *a\nc: *a\n")  # 90,004 values: within the limit
    with pytest.raises(YamlTooBig, match="expand"):
        check_expansion(big + "b: *a\nc: *a\nd: *a\ne: *a\n")


def test_anchors_used_as_real_files_do_are_fine() -> None:
    text = "x-env: &env {LOG: debug, RUST_LOG: info}\nnodes:\n" + "".join(
        f"  - {{id: n{i}, path: n.py, env: *env}}\n" for i in range(100)
    )
    value = load_yaml(text)
    assert len(value["nodes"]) == 100 and value["nodes"][99]["env"]["LOG"] == "debug"
    with pytest.raises(YamlTooBig, match="more than 100 aliases"):
        load_yaml(text + "  - {id: last, path: n.py, env: *env}\n")


def test_size_limit() -> None:
    with pytest.raises(YamlTooBig, match="larger than 1024 KiB"):
        load_yaml("#" * (descriptor.MAX_BYTES + 1))


def test_a_node_config_bomb_gives_no_machines_and_no_ids() -> None:
    """A node's environment is not trusted either: nothing, quickly, instead of 2 GB."""
    real = (FIX / "DORA_NODE_CONFIG.yaml").read_text()
    assert discover.parse_node_config(real) == ("01a212f7-a42c-7558-9ee8-948be63dd449", "hog")
    bomb_config = BOMB + "dataflow_descriptor:\n  nodes:\n  - {id: *i, deploy: {machine: *i}}\n"
    began = time.monotonic()
    assert machines.deployments(bomb_config) == {}
    assert discover.parse_node_config(bomb_config) is None
    assert time.monotonic() - began < 0.5


def test_dataflow_file_errors_are_one_line(tmp_path: Path) -> None:
    yml = tmp_path / "robot.yml"
    yml.write_text(BOMB + "nodes:\n  - id: *i\n")
    with pytest.raises(DoctorError) as err:
        descriptor.node_ids(yml)
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
    assert str(err.value).startswith(f"{yml} is refused: its aliases expand")
