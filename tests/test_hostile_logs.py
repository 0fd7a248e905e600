"""postmortem and the log readers under hostile and huge inputs (issue 14 §5, issue 12).

Hostile files (tests/fixtures/hostile/logs/, each documented in its README.md) run through the
CLI in both output modes; the parsers are fuzzed with arbitrary text and bytes; memory is
measured on dense inputs generated here (never stored), in a subprocess of its own.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List

import pytest
from helpers import run_doctor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_doctor.analysis.postmortem import KEEP_HEAD, KEEP_TAIL
from dora_doctor.logs import envelopes, logfiles, parse, patterns
from dora_doctor.logs.logfiles import LogSource, ReadStats, candidate_lines, classify

FIX = Path(__file__).parent / "fixtures"
HOSTILE = FIX / "hostile" / "logs"
HOSTILE_FILES = sorted(p for p in HOSTILE.iterdir() if p.name not in ("README.md",) and
                       not p.name.endswith(".py"))  # fmt: skip
REAL_DAEMON = FIX / "dora-1.1.0" / "detached-stop-grace-2s" / "dora-daemon.txt"
# dora 1.1.0's node-exit lines, as the daemon wrote them (5 × Signal(15), 1 × Signal(9))
EXIT_LINES = [ln for ln in REAL_DAEMON.read_text().splitlines() if "node exited with error" in ln]

# --- the hostile corpus, through the CLI -------------------------------------------------


def test_every_hostile_file_is_documented() -> None:
    readme = (HOSTILE / "README.md").read_text()
    assert HOSTILE_FILES
    for path in HOSTILE_FILES:
        assert f"`{path.name}`" in readme, path.name


def _assert_sane(result: "subprocess.CompletedProcess[str]") -> None:
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr


@pytest.mark.parametrize(
    "name,mode",
    [(p.name, mode) for p in HOSTILE_FILES for mode in ("terminal", "json")],
)
def test_hostile_file_through_postmortem(name: str, mode: str) -> None:
    args = ["--no-color", "postmortem", str(HOSTILE / name)]
    result = run_doctor(*args, *(["--json"] if mode == "json" else []), timeout=120)
    _assert_sane(result)
    if mode == "json" and result.returncode == 0:
        json.loads(result.stdout)


def _json_of(*paths: Path) -> Dict[str, object]:
    result = run_doctor("postmortem", *map(str, paths), "--json", timeout=120)
    _assert_sane(result)
    assert result.returncode == 0, result.stderr
    data: Dict[str, object] = json.loads(result.stdout)
    return data


def _inputs(data: Dict[str, object]) -> Dict[str, object]:
    return data["postmortem"]["inputs"]  # type: ignore[index,no-any-return]


def test_the_whole_hostile_folder_at_once_reads_what_is_readable() -> None:
    data = _json_of(HOSTILE)
    problems = _inputs(data)["problems"]
    assert isinstance(problems, list)
    assert sorted(p.split(": ", 1)[1] for p in problems) == [
        "binary data, not a log: skipped",
        "damaged gzip (incorrect data check): read up to the damage",
        "truncated gzip: read what it held",
    ]
    nodes = {n["id"] for d in data["dataflows"] for n in d["nodes"]}  # type: ignore[attr-defined]
    for name in ("[/oops]", "nul\x00node", "after-the-long-line", "bomb", "sleeper"):
        assert name in nodes, name


def test_a_damaged_gzip_gives_what_it_holds_and_one_warning() -> None:
    real = _inputs(_json_of(REAL_DAEMON))
    bad_crc = _inputs(_json_of(HOSTILE / "bad-crc.log.gz"))
    assert (bad_crc["lines"], bad_crc["events"]) == (real["lines"], real["events"])
    assert len(bad_crc["problems"]) == 1  # type: ignore[arg-type]
    truncated = _inputs(_json_of(HOSTILE / "truncated.log.gz"))
    assert 0 < truncated["events"] < real["events"]  # type: ignore[operator]
    assert len(truncated["problems"]) == 1  # type: ignore[arg-type]


def test_gzip_magic_on_the_first_line_of_a_plain_log_loses_nothing() -> None:
    """Issue 12: `\\x1f\\x8b` as the first line made the whole file count as gzip."""
    real = _inputs(_json_of(REAL_DAEMON))
    magic = _inputs(_json_of(HOSTILE / "magic-first-line.log"))
    assert magic["events"] == real["events"] and magic["problems"] == []


@pytest.mark.parametrize("packed", [True, False], ids=["gzip", "plain"])
def test_a_10_mb_line_is_cut_and_the_line_after_it_read(tmp_path: Path, packed: bool) -> None:
    path = HOSTILE / "long-line.log.gz"
    if not packed:  # through ripgrep, as a plain file
        path = tmp_path / "long-line.log"
        path.write_bytes(gzip.decompress((HOSTILE / "long-line.log.gz").read_bytes()))
    data = _json_of(path)
    inputs = _inputs(data)
    assert inputs["cut_lines"] == 1 and inputs["lines"] == 3 and inputs["events"] == 3
    nodes = {n["id"] for d in data["dataflows"] for n in d["nodes"]}  # type: ignore[attr-defined]
    assert "after-the-long-line" in nodes


# --- non-regular files, empty and missing inputs ------------------------------------------


def test_a_fifo_inside_a_directory_is_skipped_not_waited_on(tmp_path: Path) -> None:
    (tmp_path / "dora-daemon.txt").write_bytes(REAL_DAEMON.read_bytes())
    os.mkfifo(tmp_path / "stuck.log")  # nobody ever writes to it
    result = run_doctor("postmortem", str(tmp_path), "--json", timeout=60)
    _assert_sane(result)
    assert result.returncode == 0
    (warning,) = result.stderr.splitlines()
    assert (
        warning
        == f"dora-doctor: warning: {tmp_path / 'stuck.log'}: a FIFO, not a log file: skipped"
    )
    assert json.loads(result.stdout)["postmortem"]["inputs"]["files"] == 1


def test_a_fifo_named_explicitly_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "live.log"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as out:
            out.write(REAL_DAEMON.read_bytes())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    result = run_doctor("postmortem", str(fifo), "--json", timeout=60)
    writer.join(10)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["postmortem"]["inputs"]["events"] == len(
        list(parse.parse_lines(REAL_DAEMON.read_text().splitlines()))
    )


def test_random_bytes_are_named_binary_not_counted_as_lines(tmp_path: Path) -> None:
    noise = tmp_path / "noise.log"
    noise.write_bytes(os.urandom(5 << 20))
    both = run_doctor("postmortem", str(noise), str(REAL_DAEMON), "--json", timeout=60)
    assert both.returncode == 0
    assert both.stderr.splitlines() == [
        f"dora-doctor: warning: {noise}: binary data, not a log: skipped"
    ]
    inputs = json.loads(both.stdout)["postmortem"]["inputs"]
    assert inputs["files"] == 1 and inputs["lines"] == len(REAL_DAEMON.read_text().splitlines())


# --- fuzzing the parsers --------------------------------------------------------------------

_JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40))
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_MESSAGES = st.sampled_from([p.example for p in patterns.MESSAGE_PATTERNS])
_LINES = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
    _JSON.map(json.dumps),
    st.builds(  # dora's JSON envelope with arbitrary fields in it
        lambda stamp, level, message, span: json.dumps(
            {"timestamp": stamp, "level": level, "fields": {"message": message}, "span": span}
        ),
        st.one_of(st.text(max_size=40), _JSON),
        _JSON,
        st.one_of(_MESSAGES, st.text(max_size=80), _JSON),
        _JSON,
    ),
    st.builds(lambda a, m, b: a + m + b, st.text(max_size=40), _MESSAGES, st.text(max_size=40)),
    st.builds(
        lambda d: f"node exited with error: ExitCode({d})", st.text("0123456789-", max_size=30)
    ),
)


@settings(max_examples=400, deadline=None)
@given(line=_LINES)
def test_no_line_makes_a_parser_raise(line: str) -> None:
    record = envelopes.parse_record(line)
    assert record is None or isinstance(record.message, str)
    envelopes.parse_timestamp(line)
    envelopes.strip_ansi(line)
    parse.parse_line(line, "other")
    parse.parse_json_line(line, "node")
    patterns.event_from_message(line, None)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_LINES, max_size=20))
def test_no_run_of_lines_makes_parse_lines_raise(lines: List[str]) -> None:
    for event in parse.parse_lines(lines, "other"):
        assert event.kind and isinstance(event.text, str)


def test_a_number_of_5000_digits_in_a_message_is_no_event_and_no_crash() -> None:
    # int() refuses more than 4300 digits on Python ≥ 3.11: a ValueError, past the envelope
    line = "node exited with error: ExitCode(" + "9" * 5000 + ")"
    event = parse.parse_line(line)
    assert event is not None and event.exit_code is None
    assert list(
        parse.parse_lines([line, "handling node stop with exit status Signal(" + "1" * 5000 + ")"])
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        st.binary(max_size=3000).map(lambda b: b"\x1f\x8b" + b),
        st.binary(max_size=3000).map(lambda b: gzip.compress(b, mtime=0)),
        st.tuples(st.binary(max_size=2000), st.integers(0, 400), st.integers(0, 255)).map(
            lambda t: _damaged_gzip(*t)
        ),
    )
)
def test_no_bytes_make_the_reader_raise(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.log"
        path.write_bytes(data)
        for fast in (True, False):
            stats = ReadStats()
            lines = list(candidate_lines(classify(path), stats, patterns.CANDIDATE_ANCHORS, fast))
            assert all(len(line) <= logfiles.MAX_LINE for line in lines)
            assert len(stats.problems) <= 1  # one warning per damaged input, never a flood


def _damaged_gzip(body: bytes, at: int, value: int) -> bytes:
    packed = bytearray(gzip.compress(body, mtime=0))
    packed[min(at, len(packed) - 1)] = value
    return bytes(packed)


def test_plain_text_that_starts_like_gzip_is_plain_text() -> None:
    assert not logfiles.looks_gzip(b"\x1f\x8b\nnode exited with error: Signal(15)\n")
    assert not logfiles.looks_gzip(b"\x1f\x8b\x08\x00 plain words, not deflate data at all\n")
    assert logfiles.looks_gzip(gzip.compress(b"x" * 100)[:15])  # truncated, but gzip
    assert logfiles.looks_gzip(gzip.compress(b"node exited with error: Signal(15)\n"))


# --- memory on dense inputs -----------------------------------------------------------------

_PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
    "sys.stdout.buffer.write(done.stdout)\n"
    "sys.stderr.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + '\\n')\n"
    "sys.stderr.buffer.write(done.stderr)\n"
    "sys.exit(done.returncode)\n"
)
DENSE_MB = 100
MEMORY_LIMIT_MB = 100


def _dense(path: Path, size: int) -> int:
    """``size`` bytes of dora 1.1.0 node-exit lines and nothing else; returns how many."""
    block = ("\n".join(EXIT_LINES) + "\n").encode()
    copies = max(1, size // len(block))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as out:  # type: ignore[operator]
        piece = block * 1000
        for _ in range(copies // 1000):
            out.write(piece)
        out.write(block * (copies % 1000))
    return copies * len(EXIT_LINES)


def _peak_rss_mb(*args: str) -> "tuple[float, Dict[str, Any]]":
    """Peak RSS of ``postmortem ARGS --json`` and of its ripgrep (the larger), and its JSON."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, sys.executable, "-m", "dora_doctor", "postmortem",
         *args, "--json"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rss_kb = int(done.stderr.splitlines()[0])
    return rss_kb / 1024, json.loads(done.stdout)


@pytest.mark.parametrize("suffix", [".txt", ".gz"], ids=["plain", "gzip"])
def test_memory_stays_flat_on_a_dense_log(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"dora-daemon{suffix}"
    exits = _dense(path, DENSE_MB << 20)
    rss, data = _peak_rss_mb(str(path))
    assert rss < MEMORY_LIMIT_MB, f"{rss:.0f} MB for {exits:,} exit lines"
    # and what it reports covers the whole input, and says what was left out
    inputs = data["postmortem"]["inputs"]
    assert inputs["events"] == inputs["lines"] == exits
    assert inputs["events_kept"] == KEEP_HEAD + KEEP_TAIL
    assert inputs["events_omitted"] == exits - KEEP_HEAD - KEEP_TAIL
    by_node = data["postmortem"]["summary"]["events_by_node"]
    assert by_node == {
        json.loads(line)["span"]["node_id"]: {"node-exit": exits // len(EXIT_LINES)}
        for line in EXIT_LINES
    }
    assert len(data["postmortem"]["timeline"]) <= 500


def test_terminal_output_says_how_many_events_were_left_out(tmp_path: Path) -> None:
    path = tmp_path / "dora-daemon.txt"
    exits = _dense(path, 3 << 20)
    result = run_doctor("--no-color", "postmortem", str(path), timeout=120)
    _assert_sane(result)
    omitted = exits - KEEP_HEAD - KEEP_TAIL
    words = " ".join(result.stdout.split())  # as wide as the terminal is
    assert f"the {omitted:,} between them were only counted per node" in words


def test_ripgrep_runs_under_a_memory_limit_and_the_scan_reads_on(tmp_path: Path) -> None:
    """A line longer than ripgrep's memory limit: ripgrep fails on it, the chunked scan
    reads on from ripgrep's last complete hit, and lines and events are the same."""
    if logfiles.find_ripgrep() is None:
        pytest.skip("ripgrep is not installed")
    path = tmp_path / "long.log"
    with open(path, "wb") as out:
        out.write(("\n".join(EXIT_LINES) + "\n").encode() * 200)
        out.write(b"y" * (logfiles.RIPGREP_MEMORY + (8 << 20)) + b" stop\n")
        out.write(("\n".join(EXIT_LINES) + "\n").encode())
    results = []
    for fast in (True, False):
        stats = ReadStats()
        source = LogSource(str(path), "other")
        lines = list(candidate_lines(source, stats, patterns.CANDIDATE_ANCHORS, fast=fast))
        results.append((lines, stats.lines, stats.bytes, stats.problems))
    assert results[0] == results[1]
    assert len(results[0][0]) == 201 * len(EXIT_LINES)
    assert _peak_rss_mb(str(path))[0] < MEMORY_LIMIT_MB


def test_kept_events_of_long_lines_stay_small(tmp_path: Path) -> None:
    """1,600 events of 55 KiB lines, all kept: each kept event holds a bounded text and
    bounded names, not its whole line (else 100 MB of kept strings)."""
    path = tmp_path / "dora-daemon.txt"
    with open(path, "w") as out:
        for i in range(1600):
            span = {
                "dataflow_id": "01a21305-cb97-77dd-bba8-12ff8de085c5",
                "node_id": f"n{i % 7}" * 2000,
            }
            message = "node exited with error: Signal(15) " + "x" * (50 << 10)
            out.write(json.dumps({"fields": {"message": message}, "span": span}) + "\n")
    rss, data = _peak_rss_mb(str(path))
    assert rss < MEMORY_LIMIT_MB
    assert data["postmortem"]["inputs"]["events"] == 1600
    assert len(data["postmortem"]["summary"]["events_by_node"]) == 7


def test_file_names_in_warnings_and_errors_are_text_with_controls_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "[bold]in"
    folder.mkdir()
    binary = (HOSTILE / "binary.log").read_bytes()
    (folder / "[link=x]a.log").write_bytes(binary)
    (folder / "x\x1b[2J\u202ey.log").write_bytes(binary)
    both = run_doctor("postmortem", str(folder), str(REAL_DAEMON), "--json", timeout=60)
    _assert_sane(both)
    assert both.returncode == 0
    assert sorted(both.stderr.splitlines()) == [
        f"dora-doctor: warning: {folder}/[link=x]a.log: binary data, not a log: skipped",
        f"dora-doctor: warning: {folder}/x\\x1b[2J\\u202ey.log: binary data, not a log: skipped",
    ]
    alone = run_doctor("postmortem", str(folder), timeout=60)
    assert alone.returncode == 2 and "\x1b" not in alone.stderr and "\\x1b[2J" in alone.stderr
