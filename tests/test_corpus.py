"""The real-world corpus, end to end: each scenario of samples/README.md ("The corpus") stopped
for real with ``inspect --stop --grace-duration 2s``, and dora-doctor's answer held against the
right one (issue 13) and against what we watched happen ourselves (``corpus.observe``).

Each scenario runs once per module (one private dora per dora/Python cell, shared) and three
tests read that run:
- ``test_what_happened``: the scenario did what it is meant to (our own observation: exit time,
  dora's end line, caught signals), so a wrong answer below is the tool's, not the sample's;
- ``test_outcome_and_cause``: outcome and cause, shares <= 1, no claim without evidence;
- ``test_right_answer``: the holder is the user's own frame, victims and startup nodes get no
  code advice at their own ``Node()``, keeper threads are named.
Where today's analysis is wrong the test is ``xfail(strict=True)`` with the issue-13 section,
so it fails the moment it is fixed and the marker must go. Never assert a wrong answer here.

``-m stress`` runs each scenario three more times and requires the same outcome and cause.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest
from corpus import SCENARIOS, Run, leftovers, observe
from dora_versions import CELLS, DORA_OLD, dora_venv, node_venv, require
from typer.testing import CliRunner

from dora_doctor.cli import app
from dora_doctor.dora import versions
from dora_doctor.dora.private import LocalDora, locate_dora

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
RECORDINGS = Path(__file__).resolve().parent / "fixtures" / "recordings" / "corpus"
# Another release line for the scenarios of the default cell (issue 13 §5: every line), e.g.
# DORA_DOCTOR_CORPUS_DORA=0.5.0 pytest -m "dora and not stress" tests/test_corpus.py
CORPUS_DORA = os.environ.get("DORA_DOCTOR_CORPUS_DORA")


@dataclass(frozen=True)
class Truth:
    """The right answer for one node (issue 13)."""

    outcome: str
    cause: Optional[str]  # None: the tool's name for it is open (startup), see role
    read_stop: bool  # it left its event wait because of STOP
    holder: Optional[Tuple[str, str, str]] = None  # thread, user function, user file
    inside: Optional[str] = None  # the library function the holder is in, if it has a frame
    keeper: Optional[Tuple[str, str]] = None  # thread keeping the process alive, its function
    role: Optional[str] = None  # "victim" (waits for peers) | "starting" (before Node())
    peers: Tuple[str, ...] = ()  # a victim's peers that never registered
    handler: bool = False  # it has a SIGTERM handler
    python: Optional[str] = None  # node Python, when the cell sets it
    operator: Optional[str] = None  # the operator whose code is at fault, named as such
    also: Tuple[str, ...] = ()  # other causes as right as ``cause``
    where: Optional[Tuple[str, str]] = None  # a starting node's own function and file


CLEAN = Truth("clean", "none", True)

TRUTH: Dict[str, Dict[str, Truth]] = {
    "re_backtrack": {
        "validate": Truth(
            "terminated",
            "gil-contention",
            False,
            ("validator", "validate_username", "re_backtrack.py"),
            "match",
        )
    },
    "json_export": {
        "exporter": Truth(
            "terminated",
            "gil-contention",
            False,
            ("exporter", "export_frames", "json_export.py"),
            "iterencode",
        )
    },
    "pickle_checkpoint": {
        "checkpoint": Truth(
            "terminated",
            "slow-shutdown",
            True,
            ("MainThread", "save_checkpoint", "pickle_checkpoint.py"),
        )
    },
    "zlib_archiver": {"archiver": CLEAN},
    "numpy_object": {
        "solver": Truth(
            "terminated", "gil-contention", False, ("solver", "propagate", "numpy_object.py")
        )
    },
    "pyarrow_convert": {
        "converter": Truth(
            "terminated", "gil-contention", False, ("converter", "to_arrow", "pyarrow_convert.py")
        )
    },
    "threadpool": {
        "scorer": Truth(
            "terminated", "stuck", True, keeper=("ThreadPoolExecutor-0_0", "score_batch")
        )
    },
    "queue_listener": {"logger": CLEAN},
    "non_daemon": {
        "uploader": Truth("terminated", "stuck", True, keeper=("uploader", "upload_forever"))
    },
    "slow_startup": {
        "model": Truth(
            "terminated",
            "starting",
            False,
            role="starting",
            where=("load_model", "slow_startup.py"),
        )
    },
    "slow_startup_numpy": {
        "loader": Truth(
            "terminated",
            "starting",
            False,
            role="starting",
            where=("build_weights", "slow_startup_numpy.py"),
        )
    },
    "victim": {
        "waiter": Truth(
            "terminated", "waiting-for-peer", False, role="victim", peers=("never_ready",)
        ),
        "never_ready": Truth(
            "terminated",
            "starting",
            False,
            role="starting",
            where=("wait_for_device", "never_registers.py"),
        ),
    },
    "asyncio_ok": {"aio": CLEAN},
    "asyncio_blocked": {"aio_blocked": Truth("terminated", "stuck", False)},
    "operator_ok": {"counter": CLEAN, "talker": CLEAN},
    # the runtime calls on_event on its MainThread: the handler itself never returns
    "operator_hog": {
        "indexer": Truth(
            "terminated",
            "stuck",
            False,
            ("MainThread", "build_index", "operator_hog.py"),
            operator="hog",
            also=("gil-contention",),
        )
    },
    "process_pool": {"pool": Truth("terminated", "stuck", False)},
    "sigterm_quick": {"quick": Truth("terminated", "stuck", False, handler=True)},
    "sigterm_slow": {"flusher": Truth("killed", "stuck", False, handler=True)},
    "py312": {
        "exporter": Truth(
            "terminated",
            "gil-contention",
            False,
            ("exporter", "export_frames", "json_export.py"),
            "iterencode",
            python="3.12",
        ),
        "talker": Truth("clean", "none", True, python="3.12"),
    },
    "py313": {
        "validate": Truth(
            "terminated",
            "gil-contention",
            False,
            ("validator", "validate_username", "re_backtrack.py"),
            "match",
            python="3.13",
        ),
        "aio": Truth("clean", "none", True, python="3.13"),
    },
    # dora 0.3.x has no SIGTERM step: SIGKILL at the grace itself
    "py310": {
        "uploader": Truth(
            "killed", "stuck", True, keeper=("uploader", "upload_forever"), python="3.10"
        ),
        "talker": Truth("clean", "none", True, python="3.10"),
    },
}

# Where a release line really behaves otherwise, observed on that line (samples/README.md, "The
# corpus on every release line"): series -> scenario -> node -> Truth, over TRUTH.
LINE_TRUTH: Dict[str, Dict[str, Dict[str, Truth]]] = {
    # dora-rs 0.4.1 and 0.5.0: `await node.recv_async()` delivers events for about a second,
    # then deadlocks: MainThread blocks inside dora's extension holding the GIL while dora's
    # own thread waits for the GIL in `call_soon_threadsafe` (py-spy --native, 2026-12-02). No
    # event arrives after that, STOP neither; dora SIGTERMs it at the grace (0.5.0 logs
    # Signal(15)); 0.3.13 the same, SIGKILLed at the grace (it has no SIGTERM step, so
    # truths() makes it killed). 1.0.1 and 1.1.0 deliver STOP and the node ends clean.
    "0.3.x": {"asyncio_ok": {"aio": Truth("terminated", "stuck", False)}},
    "0.4.x": {"asyncio_ok": {"aio": Truth("terminated", "stuck", False)}},
    "0.5.x": {"asyncio_ok": {"aio": Truth("terminated", "stuck", False)}},
}


# Where today's analysis is wrong on one line only: (series, scenario, test) -> what is wrong.
# Each entry makes that test a strict xfail on that line (tests/test_corpus_lines.py).
LINE_WRONG_TODAY: Dict[Tuple[str, str, str], str] = {}


def line_of(name: str, corpus_dora: Optional[str]) -> versions.ReleaseLine:
    """The release line scenario ``name`` runs on: its cell's, or ``corpus_dora``'s for a
    scenario of the default cell run on another line."""
    cell = SCENARIOS[name].cell
    if cell == "py310":
        return versions.release_line(DORA_OLD[0])
    if cell == "default" and corpus_dora:
        return versions.release_line(corpus_dora)
    return versions.release_line("1.1.0")


def truths(name: str, corpus_dora: Optional[str] = None) -> Dict[str, Truth]:
    """The right answer per node of ``name`` on the line it runs on: TRUTH, with that line's
    observed differences (LINE_TRUTH); on a line without a SIGTERM step (0.3.x: SIGKILL at
    the grace) a node that would end by SIGTERM is killed instead (py310 observed it)."""
    line = line_of(name, corpus_dora)
    found = dict(TRUTH[name])
    if SCENARIOS[name].cell == "default" and corpus_dora:
        found.update(LINE_TRUTH.get(line.series, {}).get(name, {}))
        if not line.sigterm_step:
            found = {
                node: replace(truth, outcome="killed") if truth.outcome == "terminated" else truth
                for node, truth in found.items()
            }
    return found


# Where today's analysis gives a wrong answer: (scenario, test) -> what is wrong, per issue 13.
# Filled from real runs; each entry makes that test xfail(strict=True).
WRONG_TODAY: Dict[Tuple[str, str], str] = {}
# A race, not a steady wrong answer: strict would make the test flaky.
# Once racy (issue 13 §3: dora's end line read after the watch ended, 'clean' claimed), fixed
# by the watch waiting for that line: none left. An entry makes that test a non-strict xfail.
RACY_TODAY: Dict[Tuple[str, str], str] = {}


class Corpus:
    """One private dora per cell, started on first use; one run per scenario, kept."""

    def __init__(self, root: Path, line: Optional[str] = CORPUS_DORA) -> None:
        self.root = root
        self.line = line  # the dora release the default cell runs on (None: 1.1.0 beside us)
        self.samples = root / "samples"
        shutil.copytree(SAMPLES, self.samples, ignore=shutil.ignore_patterns("out", "__pycache__"))
        self.doras: Dict[str, LocalDora] = {}
        self.runs: Dict[str, Run] = {}
        self.count = 0

    def dora(self, cell: str) -> LocalDora:
        if cell not in self.doras:
            workdir = self.root / f"dora-{cell}"
            if cell == "py310":
                venv = require(dora_venv, *DORA_OLD)
                self.doras[cell] = LocalDora.start(workdir, dora=str(venv.dora))
            elif cell in ("py312", "py313"):
                venv = require(node_venv, "3." + cell[-2:], "1.1.0")
                self.doras[cell] = LocalDora.start(workdir, node_python=venv.python)
            elif self.line:
                line = [c for c in CELLS if c.dora == self.line and c.own_venv]
                assert line, f"dora {self.line}: not a cell of the matrix"
                venv = require(dora_venv, line[0].dora, line[0].python)
                self.doras[cell] = LocalDora.start(workdir, dora=str(venv.dora))
            else:
                self.doras[cell] = LocalDora.start(workdir)
        return self.doras[cell]

    def fresh_run(self, name: str) -> Run:
        scenario = SCENARIOS[name]
        self.count += 1
        tag = f"{name.replace('_', '-')}-{self.count}"
        run = observe(
            self.dora(scenario.cell), self.samples, scenario, self.root / f"{tag}.ddrec", tag
        )
        left = leftovers(run)
        assert not left or name == "process_pool", f"{name}: processes left behind: {left}"
        return run

    def run(self, name: str) -> Run:
        if name not in self.runs:
            self.runs[name] = self.fresh_run(name)
        return self.runs[name]

    def close(self) -> None:
        for local in self.doras.values():
            local.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    if locate_dora() is None:
        if os.environ.get("DORA_DOCTOR_REQUIRE_DORA"):
            pytest.fail("dora is required here (make test installs dora-rs-cli==1.1.0)")
        pytest.skip("dora is not installed (pip install dora-rs-cli==1.1.0 dora-rs==1.1.0)")
    shared = Corpus(tmp_path_factory.mktemp("corpus"))
    try:
        yield shared
    finally:
        shared.close()


def _cell_marks(name: str) -> List[Any]:
    """Scenarios on another dora or node Python need the matrix's venvs: -m 'not matrix'."""
    return [] if SCENARIOS[name].cell == "default" else [pytest.mark.matrix]


def _params(test: str) -> List[Any]:
    params = []
    for name in TRUTH:
        reason = WRONG_TODAY.get((name, test))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        racy = RACY_TODAY.get((name, test))
        if racy:
            marks = [pytest.mark.xfail(strict=False, reason=racy)]
        params.append(pytest.param(name, id=name, marks=marks + _cell_marks(name)))
    return params


# --- what really happened (our own observation) ---------------------------------------------


def _signal_lines(run: Run, node: str) -> List[str]:
    return [line for line in run.dora_lines[node] if "Signal(" in line or "was killed" in line]


@pytest.mark.dora
@pytest.mark.parametrize("name", _params("what_happened"))
def test_what_happened(corpus: Corpus, name: str) -> None:
    """The sample behaved as samples/README.md says: its end time and dora's end line."""
    check_what_happened(corpus.run(name), name, corpus.line)


def check_what_happened(run: Run, name: str, corpus_dora: Optional[str]) -> None:
    """Our own observation against the truth, with the facts of the line it ran on: which
    signal ends a node at the grace, and whether the daemon logs that end at all."""
    assert run.stop_at is not None, "the `dora stop` of inspect --stop was not seen"
    line = line_of(name, corpus_dora)
    for node, truth in truths(name, corpus_dora).items():
        fate = run.fates[node]
        gone = fate.gone_after_stop_s
        assert gone is not None, f"{node} never went"
        assert fate.catches_sigterm is truth.handler, node
        lines = " ".join(_signal_lines(run, node))
        # dora's line tells how it ended; the times only bound it (a loaded daemon signals late:
        # up to 3.7 s was seen for a SIGTERM due at 2 s, 2.6 s for a node ending by itself)
        if truth.outcome == "clean":
            assert gone < 5.0 and "Signal(" not in lines, (node, gone, lines)
            if line.kill_line_trustworthy:  # 0.5.x logs "was killed" for every node
                assert "was killed" not in lines, (node, lines)
        elif truth.outcome == "terminated":
            assert 1.8 <= gone < 5.0, (node, gone)
            # 0.4.x logs no node exit: the time at the grace is all there is, and Signal(15)
            # must then be absent (a line there would mean the facts are wrong)
            if not truth.handler and line.logs_node_exits:
                assert "Signal(15)" in lines, (node, lines)
            elif not line.logs_node_exits:
                assert "Signal(" not in lines, (node, lines)
        else:  # killed: 1.5 x grace with a SIGTERM step (0.4 and later), at the grace on 0.3.x
            assert gone >= 0.9 * 2.0 * line.sigkill_factor, (node, gone)
            assert "was killed" in lines or "Signal(9)" in lines, (node, lines)


# --- outcome, cause, and no claim without evidence ------------------------------------------

REACTED = re.compile(r"[^.;]*\breact(?:ed|s)?\b[^.;]*", re.IGNORECASE)
NEGATION = re.compile(r"\b(not|never|no|n't|without|did not|didn't)\b", re.IGNORECASE)
HANDLER = re.compile(r"[^.;]*SIGTERM handler[^.;]*", re.IGNORECASE)


def _texts(report_node: Dict[str, Any]) -> List[str]:
    return [*report_node.get("evidence", []), *(a["text"] for a in report_node.get("advice", []))]


def _node(run: Run, node: str) -> Dict[str, Any]:
    assert node in run.nodes, f"{node} not in the report: {sorted(run.nodes)}\n{run.doctor_stderr}"
    return run.nodes[node]


def check_no_false_claims(got: Dict[str, Any], truth: Truth) -> None:
    gil = got["gil"]
    shares = [gil["held_share"] or 0.0] + [h["share"] for h in gil["holders"]]
    assert all(0.0 <= share <= 1.0 for share in shares), shares
    for text in _texts(got):
        for percent in re.findall(r"(\d+(?:\.\d+)?) ?%", text):
            assert float(percent) <= 100, f"a share over 100 %: {text}"
        if not truth.read_stop:
            for sentence in REACTED.findall(text):
                assert NEGATION.search(sentence), f"claims a reaction it did not have: {text}"
        if not truth.handler:
            for sentence in HANDLER.findall(text):
                assert NEGATION.search(sentence), f"claims a SIGTERM handler it has not: {text}"


@pytest.mark.dora
@pytest.mark.parametrize("name", _params("outcome_and_cause"))
def test_outcome_and_cause(corpus: Corpus, name: str) -> None:
    check_outcome_and_cause(corpus.run(name), truths(name, corpus.line))


def check_outcome_and_cause(run: Run, truth_of: Dict[str, Truth]) -> None:
    assert run.doctor_exit == 0, run.doctor_stderr
    for node, truth in truth_of.items():
        got = _node(run, node)
        assert got["python"] is True, got
        if truth.python:
            assert got["python_version"] == truth.python
        assert got["outcome"] == truth.outcome, (node, got["outcome"], got["evidence"])
        if truth.cause is not None:
            assert got["cause"] in (truth.cause, *truth.also), (node, got["cause"], got["evidence"])
        else:  # a victim or a node still starting: the cause is not its own code
            assert got["cause"] not in ("gil-contention", "slow-shutdown", "stuck", "none"), got
        check_no_false_claims(got, truth)


# --- the right holder, victims, startup, keepers --------------------------------------------


def _node_line(sample: Path) -> int:
    for number, line in enumerate(sample.read_text().splitlines(), 1):
        if "= Node()" in line:
            return number
    raise AssertionError(f"no Node() in {sample}")


def check_right_answer(
    run: Run, node: str, truth: Truth, samples: Path, corpus_dora: Optional[str] = None
) -> None:
    got = _node(run, node)
    texts = " ".join(_texts(got))
    code = [a for a in got["advice"] if a["kind"] == "code"]
    if truth.holder:
        thread, function, file = truth.holder
        holder = got["gil"]["holders"][0]
        assert (holder["thread"], holder["function"]) == (thread, function), holder
        assert holder["file"].endswith(f"nodes/{file}"), holder
        if truth.inside:
            inside = holder.get("inside") or {}
            assert truth.inside in inside.get("function", ""), holder
        for advice in code:  # aimed at the user's line, not the library's
            assert advice["location"] is None or file in advice["location"], advice
    if truth.operator:
        assert f"operator {truth.operator}" in texts or f"operator `{truth.operator}`" in texts, (
            texts
        )
    if truth.keeper:
        thread, function = truth.keeper
        assert thread in texts and function in texts, texts
        assert not any("threading.py" in (a["location"] or "") for a in code), code
    if truth.role:
        script = _script_of(samples, SCENARIOS_YML[run.scenario.name], node)
        node_line = f"{script.name}:{_node_line(script)}"
        assert not any(node_line in (a["location"] or "") for a in code), code
        assert "read events in the main loop" not in texts.lower()
        assert "no grace period helps" not in texts.lower()
        if truth.role == "victim":
            assert not code, code
            assert all(peer in texts for peer in truth.peers), texts
        else:
            assert "start" in texts.lower(), texts
            # startup_timeout exists from 1.1 on: advice naming it on an older line would
            # be refused by that line's dora
            line = line_of(run.scenario.name, corpus_dora)
            assert ("startup_timeout" in texts) is line.startup_timeout, texts
            assert "after its process was spawned" in texts, texts
    if truth.where:
        function, file = truth.where
        assert f"in {function} (" in texts and f"nodes/{file}:" in texts, texts
    if truth.outcome == "clean":
        assert got["cause"] == "none" and not code, got


SCENARIOS_YML = {name: SAMPLES / s.yml for name, s in SCENARIOS.items()}


def _script_of(samples: Path, yml: Path, node: str) -> Path:
    text = yml.read_text()
    block = text.split(f"- id: {node}\n", 1)[1]
    path = re.search(r"(?:path|python): (\S+)", block)
    assert path, block
    return samples / path.group(1)


@pytest.mark.dora
@pytest.mark.parametrize("name", _params("right_answer"))
def test_right_answer(corpus: Corpus, name: str) -> None:
    run = corpus.run(name)
    for node, truth in truths(name, corpus.line).items():
        check_right_answer(run, node, truth, corpus.samples, corpus.line)


# --- stress: the same answer three times ----------------------------------------------------


# The scenarios that flaked in 3 runs each (2026-12-01); CI runs these with -m stress.
FLAKED = ("pickle_checkpoint", "py312")


def _stress_params() -> List[Any]:
    params = []
    for name in TRUTH:
        racy = RACY_TODAY.get((name, "outcome_and_cause"))
        marks = [pytest.mark.xfail(strict=False, reason=racy)] if racy else []
        params.append(pytest.param(name, id=name, marks=marks + _cell_marks(name)))
    return params


@pytest.mark.dora
@pytest.mark.stress
@pytest.mark.parametrize("name", _stress_params())
def test_stress_same_answer_three_times(
    corpus: Corpus, name: str, request: pytest.FixtureRequest
) -> None:
    """Three fresh runs agree with each other on every node's outcome and cause."""
    if "stress" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("stress runs only when selected: pytest -m stress")
    answers = []
    for _ in range(3):
        run = corpus.fresh_run(name)
        answers.append(
            {node: (_node(run, node)["outcome"], _node(run, node)["cause"]) for node in TRUTH[name]}
        )
    assert answers[0] == answers[1] == answers[2], answers


# --- the recordings, without dora ------------------------------------------------------------


# Recordings without dora's end line for a node that ended at the grace: "clean" would be a
# claim without evidence; terminated (from the timing) or unknown are right. None left: py312
# was re-recorded with the watch that waits for dora's end line (it holds Signal(15) now), and
# sigterm_quick's handler exit (no dora line by nature) is `terminated` from SigCgt + timing.
NO_END_LINE: Dict[str, str] = {}


# Recorded before the watch waited for dora's end line (issue 13 §3): a node that really ended
# clean has no line in the recording that proves it, so `unknown` is as right as `clean`.
# None left: zlib_archiver and py312 were re-recorded and hold the coordinator's end line.
NO_CLEAN_PROOF: Set[str] = set()

# Still wrong today, with the reason: each flips to a failure the moment it is fixed.
STILL_WRONG: Dict[str, str] = {}


def _recorded() -> List[Any]:
    names = sorted(p.stem for p in RECORDINGS.glob("*.ddrec"))
    return [
        pytest.param(
            n,
            id=n,
            marks=[pytest.mark.xfail(strict=True, reason=STILL_WRONG[n])]
            if n in STILL_WRONG
            else [],
        )
        for n in names
    ]


@pytest.mark.parametrize("name", _recorded())
def test_recording_gives_the_outcome(name: str) -> None:
    """``report`` on the recording of each real run (tests/fixtures/recordings/corpus/) gives
    the outcome dora really gave, without dora."""
    # in-process through the CLI (a subprocess per file cost ~2 s of interpreter start each)
    result = CliRunner().invoke(app, ["report", str(RECORDINGS / f"{name}.ddrec"), "--json"])
    assert result.exit_code == 0, result.output
    (dataflow,) = json.loads(result.stdout)["dataflows"]
    nodes = {n["id"]: n for n in dataflow["nodes"]}
    for node, truth in TRUTH[name].items():
        got = nodes[node]
        if name in NO_END_LINE and truth.outcome == "terminated":
            assert got["outcome"] in ("terminated", "unknown"), (node, got["evidence"])
        elif name in NO_CLEAN_PROOF and truth.outcome == "clean":
            assert got["outcome"] in ("clean", "unknown"), (node, got["evidence"])
        else:
            assert got["outcome"] == truth.outcome, (node, got["evidence"])
        gil = got["gil"]
        assert all(0 <= h["share"] <= 1 for h in gil["holders"])
        if truth.holder and truth.cause == "gil-contention":
            assert gil["holders"] and gil["holders"][0]["thread"] == truth.holder[0], gil
