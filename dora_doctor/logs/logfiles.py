"""Finding and reading the log files a post-mortem is given, whatever they are.

Inputs are files, directories (searched for dora's logs), gzip-compressed files (found by
their magic bytes, not their name) and ``-`` for standard input. Reading streams fixed-size
chunks, so memory stays flat on a 1 GB log; a line longer than ``MAX_LINE`` that holds an
anchor word is cut to it (and counted: an event in its tail would be lost; other long lines
are only counted as lines), and every problem with an input becomes one line of
``problems``, never an exception: a post-mortem of a crashed robot must read whatever is left.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Generator, Iterator, List, Optional, Sequence

from dora_doctor.executables import beside_python_or_on_path
from dora_doctor.logs.machines import machine_of_log

CHUNK = 4 << 20
MAX_LINE = 64 << 10
GZIP_MAGIC = b"\x1f\x8b"

# dora's own file names: out/dora-coordinator.txt, out/dora-daemon.txt, out/<uuid>/log_<node>.*
_NODE_LOG = re.compile(r"^log_(?P<node>.+?)\.(?:jsonl|txt)(?:\.gz)?$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_LOG_SUFFIXES = (".txt", ".log", ".jsonl", ".json", ".gz", ".out", ".err")


@dataclass(frozen=True)
class LogSource:
    """One input, and what its name says about it."""

    name: str
    kind: str  # "coordinator", "daemon", "node", "stdin" or "other"
    node: Optional[str] = None
    dataflow: Optional[str] = None
    machine: Optional[str] = None  # dora's machine id of the daemon that wrote it, if named


@dataclass
class ReadStats:
    files: int = 0
    bytes: int = 0
    lines: int = 0
    cut_lines: int = 0
    problems: List[str] = field(default_factory=list)


def classify(path: Path) -> LogSource:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.startswith("dora-coordinator"):
        return LogSource(str(path), "coordinator")
    if name.startswith("dora-daemon"):
        return LogSource(str(path), "daemon", machine=machine_of_log(path))
    match = _NODE_LOG.match(path.name)
    if match:
        parent = path.parent.name
        dataflow = parent if _UUID.match(parent) else None
        return LogSource(str(path), "node", match["node"], dataflow, machine_of_log(path))
    return LogSource(str(path), "other")


def _hit_lines(body: bytes, anchors: Sequence[bytes]) -> List[tuple[int, int]]:
    """(start, end) of each line of ``body`` holding an anchor, in order, each once."""
    starts = set()
    for anchor in anchors:
        at = body.find(anchor)
        while at >= 0:
            start = body.rfind(b"\n", 0, at) + 1
            starts.add(start)
            end = body.find(b"\n", at)
            at = body.find(anchor, end + 1) if end >= 0 else -1
    return [(start, body.find(b"\n", start)) for start in sorted(starts)]


def expand(inputs: Sequence[str], stats: ReadStats) -> List[LogSource]:
    """Every file to read, in a stable order; directories are searched for log files."""
    sources: List[LogSource] = []
    for item in inputs:
        if item == "-":
            sources.append(LogSource("-", "stdin"))
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(_walk(path))
            if not found:
                stats.problems.append(f"{path}: no log files in this directory")
            sources.extend(classify(p) for p in found)
        elif path.exists():
            sources.append(classify(path))
        else:
            stats.problems.append(f"{path}: no such file or directory")
    return sources


def _walk(root: Path) -> Iterator[Path]:
    for folder, _dirs, files in os.walk(root, onerror=None):
        for name in files:
            if name.endswith(_LOG_SUFFIXES) and not name.endswith(".dora-session.yaml"):
                yield Path(folder) / name


def open_source(source: LogSource, stats: ReadStats) -> Optional[IO[bytes]]:
    """A binary stream of the source, decompressed if it is gzip; None (and a problem) if not."""
    if source.kind == "stdin":
        return sys.stdin.buffer
    path = Path(source.name)
    try:
        raw = open(path, "rb")  # noqa: SIM115
    except PermissionError:
        stats.problems.append(f"{path}: permission denied (run as the user who owns it, or sudo)")
        return None
    except OSError as err:
        stats.problems.append(f"{path}: cannot open: {err.strerror}")
        return None
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def candidate_lines(
    source: LogSource, stats: ReadStats, anchors: Sequence[bytes], fast: bool = True
) -> Iterator[bytes]:
    """Only the lines that contain one of ``anchors``; every line is still counted.

    A plain file is searched by ripgrep when it is installed (``fast``): its SIMD search for
    several literals at once reads a 1 GB log in about the time ``grep -c`` needs for one.
    Otherwise (gzip, stdin, no ripgrep) the search runs over whole chunks with bytes.find,
    in C, and only the lines around a hit are cut out and handed on: a few scans per chunk,
    not a billion Python calls (and not a regular expression, whose alternations run ten
    times slower). Both give the same lines and counts; the tests hold them to it.
    """
    handle = open_source(source, stats)
    if handle is None:
        return
    rg = find_ripgrep() if fast and source.kind != "stdin" else None
    if rg is not None and not isinstance(handle, gzip.GzipFile):
        handle.close()
        if (yield from _ripgrep_lines(rg, Path(source.name), stats, anchors)):
            return
        handle = open_source(source, stats)  # ripgrep could not read it: scan it here
        if handle is None:
            return
    stats.files += 1
    tail = b""
    dropping = False  # inside a line too long to be dora's: skip to its end
    try:
        while True:
            try:
                chunk = handle.read(CHUNK)
            except (OSError, EOFError) as err:
                stats.problems.append(f"{source.name}: read failed part-way: {err}")
                break
            if not chunk:
                break
            stats.bytes += len(chunk)
            if dropping:
                newline = chunk.find(b"\n")
                if newline < 0:
                    continue
                chunk, dropping = chunk[newline + 1 :], False
                stats.lines += 1
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            body, tail = data[:cut], data[cut:]
            long_head = b""
            if len(tail) > MAX_LINE:  # keep its start, as for a long line inside the body
                long_head, tail, dropping = tail[:MAX_LINE], b"", True
            stats.lines += body.count(b"\n")
            for start, end in _hit_lines(body, anchors):
                if end - start > MAX_LINE:
                    stats.cut_lines += 1
                    end = start + MAX_LINE
                yield body[start:end]
            if any(anchor in long_head for anchor in anchors):
                stats.cut_lines += 1
                yield long_head
        if tail or dropping:
            stats.lines += 1
            if any(anchor in tail for anchor in anchors):
                yield tail
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def find_ripgrep() -> Optional[str]:
    return beside_python_or_on_path("rg")


def _ripgrep_lines(
    rg: str, path: Path, stats: ReadStats, anchors: Sequence[bytes]
) -> Generator[bytes, None, bool]:
    """The lines ripgrep finds, cut like the chunked scan cuts them; False if it failed.

    ripgrep prints ``line number:byte offset:line`` for each hit. Lines are counted from the
    last hit's number plus the newlines after it, so only the tail past the last hit (or a
    file without any hit) is read here. A huge line is read up to MAX_LINE and skipped.
    ``--no-mmap``: a mapped 1 GB file would count as 1 GB of ripgrep's memory.
    """
    argv = [
        rg, "--no-config", "--no-mmap", "--text", "--encoding", "none", "--fixed-strings",
        "--line-number", "--byte-offset", "--no-filename", "--no-heading", "--color", "never",
        *[arg for anchor in anchors for arg in ("-e", anchor.decode())],
        "--", str(path),
    ]  # fmt: skip
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError:
        return False
    assert proc.stdout is not None and proc.stderr is not None
    last_line = last_end = hits = 0
    try:
        while True:
            head = proc.stdout.readline(MAX_LINE + 64)
            if not head:
                break
            parts = head.split(b":", 2)
            if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
                continue  # not the format asked for: never worth a traceback
            number, offset, text = parts
            size = len(text)
            if not text.endswith(b"\n"):  # longer than MAX_LINE: cut, and skip the rest
                rest = b""
                while not rest.endswith(b"\n"):
                    rest = proc.stdout.readline(CHUNK)
                    size += len(rest)
                    if not rest:
                        break
            hits += 1
            last_line, last_end = int(number), int(offset) + size
            line = text.rstrip(b"\n")
            if len(line) > MAX_LINE or size > len(text):
                stats.cut_lines += 1
                line = line[:MAX_LINE]
            yield line
    finally:
        proc.stdout.close()
        error = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        status = proc.wait()
    if status not in (0, 1):  # 1: no hit at all
        if hits:
            reason = (error.splitlines() or [f"ripgrep exited with {status}"])[-1]
            stats.problems.append(f"{path}: read failed part-way: {reason}")
            return True
        return False
    stats.files += 1
    try:
        stats.bytes += path.stat().st_size
    except OSError:
        pass
    stats.lines += last_line + _lines_from(path, last_end, stats)
    return True


def _lines_from(path: Path, offset: int, stats: ReadStats) -> int:
    """Lines from ``offset`` to the end, the last one counted even without its newline."""
    count, last = 0, b"\n"
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            while True:
                chunk = handle.read(CHUNK)
                if not chunk:
                    break
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError as err:
        stats.problems.append(f"{path}: read failed part-way: {err.strerror}")
    return count + (last != b"\n")
