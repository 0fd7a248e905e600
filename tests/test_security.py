"""dora-doctor never runs a shell string: every subprocess gets an argument list."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dora_doctor"


def test_no_subprocess_call_uses_a_shell() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "shell" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                    ):
                        offenders.append(f"{path.name}:{node.lineno}")
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name in ("system", "popen") and getattr(node.func, "value", None) is not None:
                    if getattr(node.func.value, "id", "") == "os":  # type: ignore[attr-defined]
                        offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
    assert len(list(PACKAGE.rglob("*.py"))) > 10  # the scan saw the package
