"""The verdict's rules on real nodes stopped for real (markers dora, stress).

Each scenario runs on a private dora (tests/conftest.py): start, wait for the node's process,
`inspect --stop --grace-duration 2s --json`, and the right outcome and cause is required.
With ``-m stress`` each runs three times and must give the same answer every time: a
diagnosis that changes its mind between identical runs cannot be trusted. The default run
(CI) stops each once, as the corpus does for its scenarios of the same classes (the corpus
scenarios that once flaked run three times in CI: Makefile).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from helpers import run_doctor

from dora_doctor.dora.private import LocalDora

NODES = Path(__file__).parent / "fixtures" / "nodes"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
RUNS = 3

# (dataflow file, node, outcome, cause)
SCENARIOS: List[Tuple[Path, str, str, str]] = [
    (NODES / "regex_holder.yml", "scanner", "terminated", "gil-contention"),
    (NODES / "non_daemon.yml", "lingerer", "terminated", "stuck"),
    (NODES / "slow_import.yml", "loader", "terminated", "starting"),
    (NODES / "async_blocked.yml", "looper", "terminated", "stuck"),
    (NODES / "victim.yml", "waiter", "terminated", "waiting-for-peer"),
    (NODES / "busy_operator.yml", "runtime", "terminated", "stuck"),
    (SAMPLES / "well_behaved.yml", "talker", "clean", "none"),
    (SAMPLES / "sigterm_handler.yml", "sleeper", "killed", "stuck"),
]


def stop_once(dora: LocalDora, yml: Path, name: str) -> Dict[str, Dict[str, Any]]:
    dora.start_dataflow(yml, name)
    dora.wait_running(name, nodes=1)
    result = run_doctor(
        "inspect",
        name,
        "--stop",
        "--grace-duration",
        "2s",
        "--stop-after",
        "2s",
        "--json",
        env=dora.env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (dataflow,) = json.loads(result.stdout)["dataflows"]
    return {n["id"]: n for n in dataflow["nodes"]}


@pytest.mark.dora
@pytest.mark.stress
@pytest.mark.parametrize(
    ("yml", "node_id", "outcome", "cause"), SCENARIOS, ids=[s[0].stem for s in SCENARIOS]
)
def test_same_outcome_and_cause_on_every_run(
    local_dora: LocalDora,
    tmp_path: Path,
    yml: Path,
    node_id: str,
    outcome: str,
    cause: str,
    request: pytest.FixtureRequest,
) -> None:
    runs = RUNS if "stress" in (request.config.getoption("markexpr") or "") else 1
    flow = tmp_path / "flow"
    shutil.copytree(yml.parent, flow, ignore=shutil.ignore_patterns("out", "__pycache__"))
    seen = []
    for run in range(runs):
        found = stop_once(local_dora, flow / yml.name, f"{yml.stem.replace('_', '-')}-{run}")[
            node_id
        ]
        seen.append((found["outcome"], found["cause"]))
        assert found["rests_on"], found
        check_rule(yml.stem, found)
    assert seen == [(outcome, cause)] * runs


def check_rule(scenario: str, found: Dict[str, Any]) -> None:
    """The rule each scenario is about, on every run."""
    code = [a for a in found["advice"] if a["kind"] == "code"]
    if scenario == "regex_holder":
        holder = found["gil"]["holders"][0]
        assert (holder["function"], holder["native"]) == ("scan_logs", True)
        assert holder["inside"]["function"] == "match"
        assert code[0]["location"].endswith(f"regex_holder.py:{holder['line']}")
    elif scenario == "non_daemon":
        assert any("sensor in poll_sensor" in e for e in found["evidence"])
        assert "non_daemon.py" in code[0]["location"]
    elif scenario == "slow_import":
        assert not code and any("still starting" in e for e in found["evidence"])
    elif scenario == "async_blocked":
        assert not any("reacted" in e for e in found["evidence"])
    elif scenario == "sigterm_handler":
        assert "SigCgt of /proc/PID/status" in found["rests_on"]
        assert any("a SIGTERM handler that delays" in e for e in found["evidence"])
    elif scenario == "victim":
        assert not found["advice"] and any("`loader`" in e for e in found["evidence"])
    elif scenario == "busy_operator":
        assert all(h["file"] != "<string>" for h in found["gil"]["holders"])
        assert "busy_operator.py" in code[0]["location"]
    elif scenario == "well_behaved":
        assert not found["advice"]
