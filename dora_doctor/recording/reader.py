"""Reading a recording back: every line checked by the codec, nothing trusted.

A recording comes from another machine, another version, maybe a crash, maybe an attacker.
The header must be one this version reads (else a one-line error); after it, a record that
is not valid JSON or breaks the format is skipped whole and counted in
:attr:`Recording.skipped_records`, never half-used and never a crash. A single bad line at the
very end is the line being written when the writer died: the file is ``truncated``, not
damaged. Lines are read with a bounded length, so a file of one endless line cannot take the
machine's memory.

Analysis reads recordings only through :func:`read_recording`; it never talks to processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Iterable, Iterator, List, Optional, Tuple

from dora_doctor.errors import DoctorError
from dora_doctor.logs.events import LogEvent
from dora_doctor.model import (
    CpuSegment,
    Frame,
    GilSegment,
    LastDump,
    LocalsSnapshot,
    ProcessEvent,
    StackSegment,
)
from dora_doctor.recording import codec
from dora_doctor.recording.model import Record, Recording

MAX_LINE_CHARS = 16 * 1024 * 1024  # far above any real record (a 30 s recording is ~100 kB)


def read_recording(path: Path) -> Recording:
    """Read a recording, tolerating a cut-off last line (the writer was killed mid-line)."""
    with open_recording(path) as handle:
        return parse_recording(bounded_lines(handle), path)


def open_recording(path: Path) -> IO[str]:
    """The recording's lines, or the one-line error a user can act on."""
    try:
        return open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    except FileNotFoundError as err:
        raise DoctorError(f"{path}: no such recording") from err
    except IsADirectoryError as err:
        raise DoctorError(f"{path} is a directory, not a recording") from err
    except OSError as err:
        raise DoctorError(f"cannot read {path}: {err.strerror}") from err


def bounded_lines(handle: IO[str], limit: int = MAX_LINE_CHARS) -> Iterator[str]:
    """The file's lines; a line longer than ``limit`` is given as one empty-of-sense marker
    line (so it counts as malformed) and the rest of it is read and dropped in pieces."""
    try:
        while True:
            line = handle.readline(limit)
            if not line:
                return
            if len(line) < limit or line.endswith("\n"):
                yield line
                continue
            while True:  # the rest of an overlong line
                rest = handle.readline(limit)
                if not rest or rest.endswith("\n"):
                    break
            yield "\x00 line too long\n"
    except OSError as err:
        raise DoctorError(f"cannot read {getattr(handle, 'name', 'input')}: {err}") from err


def read_in_order(path: Path) -> Tuple[Recording, List[Record]]:
    """The recording and its records in file order (``Recording`` groups them by type)."""
    order: List[Record] = []
    with open_recording(path) as handle:
        return parse_recording(bounded_lines(handle), path, order), order


def parse_recording(
    lines: Iterable[str], path: Optional[Path] = None, order: Optional[List[Record]] = None
) -> Recording:
    """The recording in ``lines``; each valid record is also appended to ``order``."""
    name = str(path) if path else "input"
    iterator = iter(lines)
    header, dataflows, problems = codec.decode_header(codec.loads(next(iterator, "")), name)
    recording = Recording(path=path, header=header, dataflows=dataflows)
    for problem in problems:
        recording.skipped_records.add(problem, 1)
    frames: List[Frame] = []
    pending: List[int] = []  # line numbers of unparsable lines not yet known not to be last
    for number, line in enumerate(iterator, start=2):
        if not line.strip():
            continue
        value = codec.loads(line)
        if value is None:
            pending.append(number)
            continue
        for bad in pending:
            recording.skipped_records.add("not a JSON object", bad)
        pending = []
        try:
            record = codec.decode_record(value, frames)
        except codec.Invalid as err:
            recording.skipped_records.add(str(err), number)
            continue
        if record is not None:
            _add(recording, record)
            if order is not None:
                order.append(record)
    # a single bad line at the very end is the line being written when the writer died
    if pending:
        recording.truncated = True
        for bad in pending[:-1]:
            recording.skipped_records.add("not a JSON object", bad)
    return recording


def _add(recording: Recording, record: Record) -> None:
    if isinstance(record, StackSegment):
        recording.stacks.append(record)
    elif isinstance(record, GilSegment):
        recording.gil.append(record)
    elif isinstance(record, CpuSegment):
        recording.cpu.append(record)
    elif isinstance(record, ProcessEvent):
        recording.events.append(record)
    elif isinstance(record, LogEvent):
        recording.logs.append(record)
    elif isinstance(record, LocalsSnapshot):
        recording.locals.append(record)
    elif isinstance(record, LastDump):
        recording.last_dumps.append(record)


def ensure_usable(recording: Recording) -> Recording:
    """The recording, if anything in it can be analysed; else the one line saying it is
    damaged (a header whose every dataflow broke the format leaves nothing to report on)."""
    if not recording.dataflows:
        name = str(recording.path) if recording.path else "input"
        raise DoctorError(f"{name} is damaged: its header names no valid dataflow")
    return recording
