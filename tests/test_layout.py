"""The pipeline's direction, kept true as the code grows: every module's imports, read from
its source (TYPE_CHECKING and function-level imports included), point only where its stage
may look. See docs/architecture.md for the stages and why."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

PACKAGE = Path(__file__).resolve().parent.parent / "dora_doctor"

# Modules at the top of the package that every stage may use: the shared model and small
# helpers with no knowledge of any stage.
BASE = {"errors", "units", "model", "executables", "textsafe", "__init__"}

# stage -> the stages (and single modules) it may import, besides itself and BASE
ALLOWED: Dict[str, Set[str]] = {
    "dora": set(),
    "logs": {"dora.versions"},
    "recording": {"logs"},
    "analysis": {"logs", "recording", "dora.versions"},
    "report": {"analysis", "recording"},
    # history keeps diagnosed stops: it reads what analysis concluded and the recording and
    # log facts behind it, and never talks to processes or dora itself
    "history": {"analysis", "recording", "logs"},
    # capture may write history so that `watch` records each stop as it diagnoses it;
    # commands write it after their diagnosis and read it for `history`
    "capture": {"dora", "logs", "recording", "analysis", "history"},
    "commands": {"dora", "logs", "recording", "analysis", "report", "capture", "history"},
}
TOP = {"cli": {"commands"}, "__main__": {"cli"}}

# Known exceptions, each to be removed by the change that fixes it; none may be added.
EXCEPTIONS: Set[Tuple[str, str]] = set()


def modules() -> Iterator[Tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        yield ".".join(rel.parts), path


def imported(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{path}: relative import; use dora_doctor.…")
            if node.module == "dora_doctor":
                for alias in node.names:
                    yield alias.name
            elif node.module.startswith("dora_doctor."):
                yield node.module[len("dora_doctor.") :]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dora_doctor."):
                    yield alias.name[len("dora_doctor.") :]


def may_import(importer: str, target: str) -> bool:
    stage = importer.split(".")[0]
    target_stage = target.split(".")[0]
    if target_stage in BASE or target == "__version__":
        return True
    if "." not in importer:  # a top-level module
        if importer in BASE:
            return False
        return target_stage in TOP.get(importer, set())
    if target_stage == stage:
        return True
    allowed = ALLOWED[stage]
    return target_stage in allowed or any(
        target == a or target.startswith(a + ".") for a in allowed
    )


def violations() -> List[str]:
    found = []
    for name, path in modules():
        if name.endswith("__init__") and name != "__init__":
            name = name[: -len(".__init__")]
        for target in imported(path):
            if not may_import(name, target) and (name, target) not in EXCEPTIONS:
                found.append(f"{name} imports {target}")
    return found


def test_imports_point_one_way() -> None:
    assert violations() == []


def test_every_stage_is_known() -> None:
    stages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert stages == set(ALLOWED)
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= BASE | set(TOP), top - BASE - set(TOP)


def test_the_checker_catches_a_wrong_import() -> None:
    assert not may_import("analysis.diagnose", "capture.sampler")
    assert not may_import("analysis.grace", "dora.client")
    assert not may_import("report.html", "dora.versions")
    assert not may_import("model", "analysis.findings")
    assert may_import("analysis.timeline", "dora.versions")
    assert may_import("report.html", "analysis.timeline")
