"""Finding and reading the log files a post-mortem is given, whatever they are.

Inputs are files, directories (searched for dora's logs), gzip-compressed files (found by a
first member that really decompresses, not by their name nor by two magic bytes a plain log
may start with) and ``-`` for standard input. Reading streams fixed-size chunks, so memory
stays flat on a 1 GB log; a line longer than ``MAX_LINE`` that holds an anchor word is cut to
it (and counted: an event in its tail would be lost; other long lines are only counted as
lines), and every problem with an input becomes one line of ``problems``, never an
exception: a post-mortem of a crashed robot must read whatever is left. Input that is not
text (random bytes, a core dump under a log's name) is named as binary and skipped, and only
regular files are opened inside a directory: a FIFO there would block the read forever.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import resource
import stat
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Generator, Iterator, List, Optional, Sequence, Tuple

from dora_doctor.executables import beside_python_or_on_path
from dora_doctor.logs.machines import machine_of_log

CHUNK = 4 << 20
GZIP_PIECE = 1 << 20
MAX_LINE = 64 << 10
GZIP_MAGIC = b"\x1f\x8b"
# the head of every input is read first: to tell gzip from text and text from binary data
SNIFF = 64 << 10
# a log is text: in its head, more than this share of control bytes or bytes that are not
# UTF-8 means binary data (a log with a Latin-1 name stays far below it). NUL is not counted:
# a log cut short by a crash or a power loss often ends in a block of NULs, and is still text.
BINARY_SHARE = 0.10
_CONTROLS = bytes(c for c in range(1, 32) if c not in (9, 10, 13, 27)) + b"\x7f"
# ripgrep holds a whole line in memory: one 200 MB line took 425 MB. Under this address-space
# limit it fails instead, and the scan here reads on from its last complete hit.
RIPGREP_MEMORY = 64 << 20

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
    # found inside a directory rather than named by the user: read only if a regular file
    found: bool = False


@dataclass
class ReadStats:
    files: int = 0
    bytes: int = 0
    lines: int = 0
    cut_lines: int = 0
    problems: List[str] = field(default_factory=list)


def classify(path: Path, found: bool = False) -> LogSource:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.startswith("dora-coordinator"):
        return LogSource(str(path), "coordinator", found=found)
    if name.startswith("dora-daemon"):
        return LogSource(str(path), "daemon", machine=machine_of_log(path), found=found)
    match = _NODE_LOG.match(path.name)
    if match:
        parent = path.parent.name
        dataflow = parent if _UUID.match(parent) else None
        return LogSource(
            str(path), "node", match["node"], dataflow, machine_of_log(path), found=found
        )
    return LogSource(str(path), "other", found=found)


def _hit_lines(data: bytes, stop: int, anchors: Sequence[bytes]) -> List[Tuple[int, int]]:
    """(start, end) of each line of ``data[:stop]`` holding an anchor, in order, each once.
    ``data[stop - 1]`` is a newline; bounds, not a slice: a slice would copy 4 MiB."""
    starts = set()
    for anchor in anchors:
        at = data.find(anchor, 0, stop)
        while at >= 0:
            start = data.rfind(b"\n", 0, at) + 1
            starts.add(start)
            end = data.find(b"\n", at, stop)
            at = data.find(anchor, end + 1, stop) if end >= 0 else -1
    return [(start, data.find(b"\n", start, stop)) for start in sorted(starts)]


def missing(inputs: Sequence[str]) -> List[str]:
    """The named inputs that do not exist: a usage error, before anything is read."""
    return [item for item in inputs if item != "-" and not os.path.lexists(item)]


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
            sources.extend(classify(p, found=True) for p in found)
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


_FILE_TYPES = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind_of(mode: int) -> str:
    return next((what for test, what in _FILE_TYPES if test(mode)), "not a regular file")


@dataclass
class _Opened:
    handle: IO[bytes]
    regular: bool


def _open(source: LogSource, stats: ReadStats) -> Optional[_Opened]:
    """The raw file, or None (and a problem). A file found in a directory is opened without
    blocking and read only if it is a regular file: opening a FIFO waits for a writer."""
    if source.kind == "stdin":
        return _Opened(sys.stdin.buffer, regular=False)
    path = Path(source.name)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | (os.O_NONBLOCK if source.found else 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        stats.problems.append(f"{path}: permission denied (run as the user who owns it, or sudo)")
        return None
    except OSError as err:
        if err.errno == errno.ENXIO:  # a socket, or a FIFO opened without blocking
            stats.problems.append(f"{path}: not a regular file: skipped")
        else:
            stats.problems.append(f"{path}: cannot open: {err.strerror}")
        return None
    mode = os.fstat(fd).st_mode
    regular = stat.S_ISREG(mode)
    if source.found and not regular:
        os.close(fd)
        stats.problems.append(f"{path}: {_kind_of(mode)}, not a log file: skipped")
        return None
    if source.found:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return _Opened(os.fdopen(fd, "rb"), regular)


def _read_head(handle: IO[bytes], size: int, stats: ReadStats, name: str) -> bytes:
    """Up to ``size`` bytes (fewer only at the end of the input), even from a pipe."""
    parts: List[bytes] = []
    got = 0
    while got < size:
        try:
            part = handle.read(size - got)
        except OSError as err:
            stats.problems.append(f"{name}: read failed part-way: {err.strerror or err}")
            break
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def looks_gzip(head: bytes) -> bool:
    """A gzip member starts here: its header parses and its data inflates (or the input
    ends first, a truncated member). Two magic bytes alone are not enough: a plain log whose
    first line happens to start with them is still a log."""
    if not head.startswith(GZIP_MAGIC):
        return False
    inflate = zlib.decompressobj(31)
    produced = 0
    for start in range(0, len(head), 512):
        try:
            produced += len(inflate.decompress(head[start : start + 512], 1 << 16))
        except zlib.error:
            return produced > 0  # damaged after some data: gzip that needs a warning
        if produced or inflate.eof:
            return True
    return True  # header and no error before the input ended: a truncated member


def is_binary(sample: bytes) -> bool:
    """Binary data, not a log: too many control bytes or bytes that are not UTF-8."""
    if not sample:
        return False
    controls = sum(sample.count(c) for c in _CONTROLS)
    invalid = sample[:-4].decode("utf-8", "replace").count("\ufffd") if len(sample) > 4 else 0
    return controls + invalid > BINARY_SHARE * len(sample)


def _raw_chunks(
    head: bytes, handle: IO[bytes], stats: ReadStats, name: str, size: int = CHUNK
) -> Iterator[bytes]:
    if head:
        yield head
    while True:
        try:
            chunk = handle.read(size)
        except (OSError, EOFError) as err:
            stats.problems.append(f"{name}: read failed part-way: {err}")
            return
        if not chunk:
            return
        yield chunk


class _Damaged(Exception):
    pass


def _gunzip(chunks: Iterator[bytes], stats: ReadStats, name: str) -> Iterator[bytes]:
    """The inflated data of every member, at most CHUNK at a time (a bomb stays a stream).

    A truncated member, a bad CRC or garbage after the last member ends the read with one
    problem: everything inflated before the damage has been handed on already. The input's
    last 8 bytes (the last member's CRC and size) are held back until the end, so that a bad
    CRC there cannot take the last block's data with it.
    """
    inflate = zlib.decompressobj(31)
    fed = False

    def feed(data: bytes) -> Iterator[bytes]:
        nonlocal inflate, fed
        while data:
            fed = True
            try:
                out = inflate.decompress(data, CHUNK)
            except zlib.error as err:
                reason = str(err).split(": ", 1)[-1]
                stats.problems.append(f"{name}: damaged gzip ({reason}): read up to the damage")
                raise _Damaged from err
            if out:
                yield out
            if inflate.eof:
                data = inflate.unused_data
                if data and not data.startswith(GZIP_MAGIC):
                    if data.strip(b"\0"):
                        stats.problems.append(f"{name}: data after the gzip stream: ignored")
                    raise _Damaged
                inflate, fed = zlib.decompressobj(31), False
            else:
                data = inflate.unconsumed_tail

    held = b""
    try:
        for chunk in chunks:
            data = held + chunk
            held = data[-8:]
            yield from feed(data[:-8])
        yield from feed(held)
    except _Damaged:
        return
    if fed and not inflate.eof:
        tail = inflate.flush()
        if tail:
            yield tail
        stats.problems.append(f"{name}: truncated gzip: read what it held")


def _first(chunks: Iterator[bytes], size: int) -> Tuple[bytes, Iterator[bytes]]:
    """The first ``size`` bytes of a stream of chunks, and the stream from the start again."""
    taken: List[bytes] = []
    got = 0
    for chunk in chunks:
        taken.append(chunk)
        got += len(chunk)
        if got >= size:
            break
    head = b"".join(taken)

    def again() -> Iterator[bytes]:
        if head:
            yield head
        yield from chunks

    return head[:size], again()


def read_head(source: LogSource, size: int) -> bytes:
    """The first ``size`` bytes of a log, gzip inflated; b"" where it cannot be read here.

    For telling dora's release line from a log's first lines before the scan. Standard input
    and non-regular files are read once, by the scan alone; problems are the scan's to report.
    """
    if source.kind == "stdin":
        return b""
    scratch = ReadStats()
    opened = _open(source, scratch)
    if opened is None:
        return b""
    with opened.handle as handle:
        if not opened.regular:
            return b""
        head = _read_head(handle, size, scratch, source.name)
        if not looks_gzip(head):
            return head
        chunks = _raw_chunks(head, handle, scratch, source.name)
        inflated, _ = _first(_gunzip(chunks, scratch, source.name), size)
        return inflated


def candidate_lines(
    source: LogSource, stats: ReadStats, anchors: Sequence[bytes], fast: bool = True
) -> Iterator[bytes]:
    """Only the lines that contain one of ``anchors``; every line is still counted.

    A plain file is searched by ripgrep when it is installed (``fast``): its SIMD search for
    several literals at once reads a 1 GB log in about the time ``grep -c`` needs for one.
    Otherwise (gzip, stdin, a FIFO, no ripgrep) the search runs over whole chunks with
    bytes.find, in C, and only the lines around a hit are cut out and handed on: a few scans
    per chunk, not a billion Python calls (and not a regular expression, whose alternations
    run ten times slower). Both give the same lines and counts; the tests hold them to it.
    """
    opened = _open(source, stats)
    if opened is None:
        return
    handle = opened.handle
    try:
        head = _read_head(handle, SNIFF, stats, source.name)
        chunks = _raw_chunks(head, handle, stats, source.name)
        packed = looks_gzip(head)
        if packed:  # compressed data in 1 MiB pieces: each holds up to 4 MiB inflated at once
            chunks = _raw_chunks(head, handle, stats, source.name, GZIP_PIECE)
            head, chunks = _first(_gunzip(chunks, stats, source.name), SNIFF)
        if is_binary(head):
            what = "gzip of binary data" if packed else "binary data"
            stats.problems.append(f"{source.name}: {what}, not a log: skipped")
            return
        rg = find_ripgrep() if fast and opened.regular and not packed else None
        lines_before = 0
        if rg is not None:
            resume = yield from _ripgrep_lines(rg, Path(source.name), stats, anchors)
            if resume is None:
                return
            offset, lines_before = resume  # ripgrep stopped: read on from its last hit here
            handle.seek(offset)
            stats.bytes += offset
            chunks = _raw_chunks(b"", handle, stats, source.name)
        stats.files += 1
        stats.lines += lines_before
        yield from _scan_chunks(chunks, stats, anchors)
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def _scan_chunks(
    chunks: Iterator[bytes], stats: ReadStats, anchors: Sequence[bytes]
) -> Iterator[bytes]:
    tail = b""
    dropping = False  # inside a line too long to be dora's: skip to its end
    for chunk in chunks:
        stats.bytes += len(chunk)
        if dropping:
            newline = chunk.find(b"\n")
            if newline < 0:
                continue
            chunk, dropping = chunk[newline + 1 :], False
            stats.lines += 1
        data = tail + chunk if tail else chunk
        del chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        long_head = b""
        if len(tail) > MAX_LINE:  # keep its start, as for a long line inside the body
            long_head, tail, dropping = tail[:MAX_LINE], b"", True
        stats.lines += data.count(b"\n", 0, cut)
        for start, end in _hit_lines(data, cut, anchors):
            if end - start > MAX_LINE:
                stats.cut_lines += 1
                end = start + MAX_LINE
            yield data[start:end]
        if any(anchor in long_head for anchor in anchors):
            stats.cut_lines += 1
            yield long_head
    if tail or dropping:
        stats.lines += 1
        if any(anchor in tail for anchor in anchors):
            yield tail


def find_ripgrep() -> Optional[str]:
    return beside_python_or_on_path("rg")


def _limit_ripgrep() -> None:  # pragma: no cover (runs in the child, before exec)
    resource.setrlimit(resource.RLIMIT_AS, (RIPGREP_MEMORY, RIPGREP_MEMORY))


def _ripgrep_lines(
    rg: str, path: Path, stats: ReadStats, anchors: Sequence[bytes]
) -> Generator[bytes, None, Optional[Tuple[int, int]]]:
    """The lines ripgrep finds, cut like the chunked scan cuts them.

    Returns None when ripgrep read the whole file, else (byte offset, lines before it) of the
    end of its last complete hit, for the chunked scan to read on from: ripgrep ran out of
    its memory limit on a huge line, or could not run at all (then (0, 0)).

    ripgrep prints ``line number:byte offset:line`` for each hit. Lines are counted from the
    last hit's number plus the newlines after it, so only the tail past the last hit (or a
    file without any hit) is read here. A huge line is read up to MAX_LINE and skipped.
    ``--no-mmap``: a mapped 1 GB file would count as 1 GB of ripgrep's memory.
    """
    argv = [
        rg, "--no-config", "--no-mmap", "--text", "--encoding", "none", "--fixed-strings",
        "--line-number", "--byte-offset", "--no-filename", "--no-heading", "--color", "never",
        "--threads", "1",
        *[arg for anchor in anchors for arg in ("-e", anchor.decode())],
        "--", str(path),
    ]  # fmt: skip
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_limit_ripgrep,  # noqa: PLW1509 (setrlimit only, no threads yet)
        )
    except OSError:
        return (0, 0)
    assert proc.stdout is not None and proc.stderr is not None
    last_line = last_end = 0
    complete = True
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
            rest = text
            while not rest.endswith(b"\n"):  # longer than MAX_LINE: cut, and skip the rest
                rest = proc.stdout.readline(CHUNK)
                size += len(rest)
                if not rest:
                    break
            if not rest.endswith(b"\n"):  # ripgrep died in the middle of printing it
                complete = False
                break
            last_line, last_end = int(number), int(offset) + size
            line = text.rstrip(b"\n")
            if len(line) > MAX_LINE or size > len(text):
                stats.cut_lines += 1
                line = line[:MAX_LINE]
            yield line
    finally:
        proc.stdout.close()
        proc.stderr.read()
        proc.stderr.close()
        status = proc.wait()
    if status not in (0, 1) or not complete:  # 1: no hit at all
        return (last_end, last_line)
    stats.files += 1
    try:
        stats.bytes += path.stat().st_size
    except OSError:
        pass
    stats.lines += last_line + _lines_from(path, last_end, stats)
    return None


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
