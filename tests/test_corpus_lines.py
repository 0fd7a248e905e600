"""The corpus on every older release line (issue 13 §5): the default cell's scenarios stopped
for real on dora 0.3.13, 0.4.1, 0.5.0 and 1.0.1, each held against the right answer *of that
line* (test_corpus.truths: TRUTH with what the line really does otherwise).

A full run costs 3-4 min per line, too much for CI, so it has a marker of its own and runs only
when selected: ``pytest -m lines tests/test_corpus_lines.py`` (samples/README.md has the last
results). CI runs a few scenarios that exercise what differs between the lines (``CI_RUNS``),
about a minute in all, each line's on one private dora shared by the module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from corpus import SCENARIOS
from dora_versions import CELLS
from test_corpus import (
    LINE_WRONG_TODAY,
    RACY_TODAY,
    WRONG_TODAY,
    Corpus,
    check_outcome_and_cause,
    check_right_answer,
    check_what_happened,
    truths,
)

from dora_doctor.dora import versions
from dora_doctor.dora.private import locate_dora

# The lines older than the suite's own (1.1.0), newest first.
LINES = tuple(c.dora for c in reversed(CELLS) if c.own_venv)

# What CI runs on each older line: the shapes whose answer rests on a fact that differs there.
CI_RUNS: Tuple[Tuple[str, str], ...] = (
    # a C-call GIL holder SIGTERMed at the grace, and the daemon logs no end at all
    ("0.4.1", "re_backtrack"),
    # a model load before Node() after numpy and pyarrow: no thread tells it from a node
    # waiting in Node() here; its missing connection to the daemon does
    ("0.4.1", "slow_startup_numpy"),
    # dora's Python runtime has no DORA_NODE_CONFIG (found through DORA_RUNTIME_CONFIG);
    # its operator holds the GIL; "was killed" is logged for nodes long gone
    ("0.5.0", "operator_hog"),
    # recv_async delivers STOP here (it deadlocks on 0.3.13, 0.4.1 and 0.5.0)
    ("1.0.1", "asyncio_ok"),
    # ... and deadlocks here, holding the GIL: SIGKILL at the grace, no SIGTERM step
    ("0.3.13", "asyncio_ok"),
)

DEFAULT_SCENARIOS = [name for name, s in SCENARIOS.items() if s.cell == "default"]


class Lines:
    """One :class:`Corpus` per release line, started on first use and closed at the end."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.corpora: Dict[str, Corpus] = {}

    def corpus(self, line: str) -> Corpus:
        if line not in self.corpora:
            self.close()  # the tests come in line order: one line's dora at a time
            root = self.factory.mktemp(f"corpus-{line}")
            self.corpora[line] = Corpus(root, line=line)
        return self.corpora[line]

    def close(self) -> None:
        for corpus in self.corpora.values():
            corpus.close()
        self.corpora.clear()


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lines]:
    if locate_dora() is None:
        if os.environ.get("DORA_DOCTOR_REQUIRE_DORA"):
            pytest.fail("dora is required here (make test installs dora-rs-cli==1.1.0)")
        pytest.skip("dora is not installed (pip install dora-rs-cli==1.1.0 dora-rs==1.1.0)")
    shared = Lines(tmp_path_factory)
    try:
        yield shared
    finally:
        shared.close()


CHECKS = ("what_happened", "outcome_and_cause", "right_answer")


def _params(full: bool) -> List[Any]:
    """(line, scenario, check) in line order, so one line's private dora serves all its runs
    and is closed before the next line's starts: all of them for the full run, ``CI_RUNS``
    else. Today's known wrong answers (test_corpus.WRONG_TODAY) are strict xfails on every
    line, as on 1.1.0, and those of one line (LINE_WRONG_TODAY) on that line."""
    pairs = (
        [(line, name) for line in LINES for name in DEFAULT_SCENARIOS] if full else list(CI_RUNS)
    )
    params = []
    for line, name in pairs:
        for check in CHECKS:
            marks: List[Any] = [pytest.mark.matrix]
            series = versions.release_line(line).series
            reason = WRONG_TODAY.get((name, check)) or LINE_WRONG_TODAY.get((series, name, check))
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            racy = RACY_TODAY.get((name, check))
            if racy:
                marks = [pytest.mark.matrix, pytest.mark.xfail(strict=False, reason=racy)]
            if full:
                marks.append(pytest.mark.lines)
            params.append(pytest.param(line, name, check, id=f"{line}-{name}-{check}", marks=marks))
    return params


def _check(lines: Lines, line: str, name: str, check: str) -> None:
    corpus = lines.corpus(line)
    run = corpus.run(name)
    if check == "what_happened":
        check_what_happened(run, name, line)
    elif check == "outcome_and_cause":
        check_outcome_and_cause(run, truths(name, line))
    else:
        for node, truth in truths(name, line).items():
            check_right_answer(run, node, truth, Path(corpus.samples), line)


@pytest.mark.dora
@pytest.mark.parametrize("line,name,check", _params(full=False))
def test_line(lines: Lines, line: str, name: str, check: str) -> None:
    """CI: the few scenarios that exercise what differs between the lines."""
    _check(lines, line, name, check)


@pytest.mark.dora
@pytest.mark.parametrize("line,name,check", _params(full=True))
def test_every_line(
    lines: Lines, line: str, name: str, check: str, request: pytest.FixtureRequest
) -> None:
    """The full run per line, only when selected: ``pytest -m lines``."""
    if "lines" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the full per-line corpus runs only when selected: pytest -m lines")
    _check(lines, line, name, check)
