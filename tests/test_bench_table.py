"""docs/performance.md's table is generated from bench/results/*.json (bench/table.py); these
tests fail when someone edits one without the other, so the published figures are always
those of the runs on file, and each file names the commit and tools it measured. No timing
is asserted here: targets are the benchmarks' job."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "bench" / "table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


table = load_table()


def test_performance_page_table_matches_results_files() -> None:
    expected = table.render(table.read_results())
    actual = table.page_block((ROOT / "docs" / "performance.md").read_text())
    assert actual == expected, "the table is stale: run `python bench/table.py --write`"


def test_every_results_file_has_a_section_in_the_table() -> None:
    sections = {name for name, _ in table.SECTIONS}
    files = {p.stem for p in (ROOT / "bench" / "results").glob("*.json")}
    assert files, "no benchmark results on file"
    assert files <= sections, f"results without a table section: {sorted(files - sections)}"


def test_every_bench_of_make_bench_has_a_section() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    for name, _ in table.SECTIONS:
        line = "bench/" + table.PRODUCED_BY.get(name, f"{name}.py")
        assert line in recipe, f"`make bench` does not run {line}"
    assert "bench/table.py --write" in recipe


@pytest.mark.parametrize(
    "path", sorted((ROOT / "bench" / "results").glob("*.json")), ids=lambda p: p.name
)
def test_results_name_the_machine_and_the_load(path: Path) -> None:
    doc = json.loads(path.read_text())
    machine = doc["machine"]
    for key in ("cpu_model", "cpus", "python", "dora_rs_cli", "py_spy"):
        assert machine.get(key), f"{path.name}: machine.{key} missing"
    assert len(doc["loadavg_at_end"]) == 3
    for row in doc["results"]:
        assert len(row["loadavg_before"]) == 3, f"{path.name}: a row without its load"


@pytest.mark.parametrize(
    "path", sorted((ROOT / "bench" / "results").glob("*.json")), ids=lambda p: p.name
)
def test_results_name_the_commit_and_tool_versions_measured(path: Path) -> None:
    source = json.loads(path.read_text())["source"]
    assert re.fullmatch(r"[0-9a-f]{40}", source["git_commit"]), source
    assert isinstance(source["git_dirty"], bool)
    for tool in ("dora_doctor", "py_spy", "dora"):
        assert re.fullmatch(r"\d+\.\d+\.\d+\S*", source[tool] or ""), f"{path.name}: {tool}"


def test_a_new_results_file_records_its_source() -> None:
    """What write_results() will store, asked of this checkout and its tools now."""
    spec = importlib.util.spec_from_file_location(
        "results_file", ROOT / "bench" / "results_file.py"
    )
    assert spec is not None and spec.loader is not None
    results_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results_file)
    source = results_file.source()
    from dora_doctor import __version__

    assert source["dora_doctor"] == __version__
    assert source["py_spy"] and source["py_spy"][0].isdigit()
    if source["git_commit"] is not None:  # a checkout, not an sdist
        assert re.fullmatch(r"[0-9a-f]{40}", source["git_commit"])


def test_missing_results_are_named_not_hidden(tmp_path: Path) -> None:
    (tmp_path / "cli_startup.json").write_text(
        json.dumps(
            {
                "machine": {"cpu_model": "Test CPU", "cpus": 2, "python": "3.11.7"},
                "taken": "2026-01-02T03:04:05Z",
                "loadavg_at_end": [0.5, 0.4, 0.3],
                "target_extra_s": 0.3,
                "results": [
                    {"reps": 3, "python_c_pass_s": 0.03, "help_s": 0.5, "inspect_help_s": 0.6,
                     "help_extra_s": 0.47, "inspect_help_extra_s": 0.57,
                     "loadavg_before": [1.25, 1.0, 1.0]}
                ],
            }
        )
    )  # fmt: skip
    block = table.render(table.read_results(tmp_path))
    assert "Machine: Test CPU, 2 cores, CPython 3.11.7" in block
    assert "Taken 2026-01-02 (UTC). Code: commit not recorded," in block
    row = next(ln for ln in block.splitlines() if "dora-doctor --help" in ln)
    assert "+0.470 s" in row and "| ≤ 0.3 s extra | **no** | 1.2 |" in row
    assert "Not measured yet:" in block and "`attach_latency`" in block
    page = f"intro\n{table.BEGIN}\nold\n{table.END}\nafter\n"
    assert table.replace_block(page, block) == f"intro\n{block}after\n"
