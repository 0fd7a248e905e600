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


# Run the CLI under a Python audit hook (PEP 578) that writes down every file it opens and
# every program it starts; written to OUT at exit.
AUDITED = """
import atexit, json, runpy, sys
seen = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        seen.append(["open", str(args[0])])
    elif event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system"):
        seen.append([event, repr(args[:2])])
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(seen)))
sys.addaudithook(hook)
sys.argv[0] = "dora-doctor"
runpy.run_module("dora_doctor", run_name="__main__")
"""


def test_postmortem_opens_only_its_inputs_and_runs_only_ripgrep(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    bait = tmp_path / "bait.py"
    bait.write_text("raise SystemExit('executed')\n")
    (inputs / "dora-daemon.txt").write_text(
        f"node exited with error: Signal(15) path: {bait}\n"
        f"`{bait}` exited with Signal(15) during planned stop; treating as clean\n"
        "Node `x` failed: exited with code 1 with stderr output: see /etc/shadow\n"
        "loading dataflow from ../../etc/passwd and out/01a21305-cb97-77dd-bba8-12ff8de085c5/"
        "log_x.txt\n"
    )
    record = tmp_path / "audit.json"
    result = subprocess.run(
        [sys.executable, "-c", AUDITED, str(record), "postmortem", str(inputs), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    python_files = (".py", ".pyc", ".so", ".pth", ".json", ".typed")
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, str(PACKAGE)})
    opened = [
        path
        for kind, path in seen
        if kind == "open"
        and not path.startswith(prefixes)
        and not (path.endswith(python_files) and "site-packages" in path)
        and path not in (str(record), "/dev/null", "/proc/stat")  # psutil's import reads it
    ]
    assert opened, "the audit hook saw no input being read"
    assert all(os.path.commonpath([p, inputs]) == str(inputs) for p in opened), opened
    started = [args for kind, args in seen if kind != "open"]
    assert all("'rg'" in args or "/rg'" in args for args in started), started
    assert "executed" not in result.stdout + result.stderr
