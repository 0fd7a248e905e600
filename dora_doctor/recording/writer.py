"""Writing a recording: the header, then one flushed line per record as it arrives.

Each line is complete on disk before the next is written, so a Ctrl-C or a kill leaves a
file that reads back up to its last complete line. Frames are stored once, in ``frames``
records that come before their first use, and stacks refer to them by index: a pure-Python
loop changes its line at every sample, and repeating whole stacks would make a 30 s
recording of 10 nodes weigh tens of megabytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Dict, Iterable, List, Optional

from dora_doctor.errors import DoctorError
from dora_doctor.model import Frame, Stack
from dora_doctor.recording import codec
from dora_doctor.recording.model import Record


class RecordingWriter:
    """Appends records to a new recording file (never an existing one), one line each.

    ``handle``: write there instead of creating ``path`` (``merge`` writes to a temporary
    file it created itself, and moves it into place only when it is complete).
    """

    def __init__(
        self, path: Path, header: Dict[str, Any], handle: Optional[IO[str]] = None
    ) -> None:
        self.path = path
        self._file: IO[str] = handle if handle is not None else _create(path)
        self._frames: Dict[Frame, int] = {}
        self._line(header)

    def write(self, record: Record) -> None:
        self._new_frames(codec.stacks_of(record))
        self._line(codec.encode_record(record, self._refs))

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self, value: Dict[str, Any]) -> None:
        self._file.write(codec.dumps(value) + "\n")
        self._file.flush()

    def _new_frames(self, stacks: Iterable[Stack]) -> None:
        new: List[Frame] = []
        for stack in stacks:
            for frame in stack:
                if frame not in self._frames:
                    self._frames[frame] = len(self._frames)
                    new.append(frame)
        if new:
            self._line(codec.encode_frames(len(self._frames) - len(new), new))

    def _refs(self, stack: Stack) -> List[int]:
        return [self._frames[f] for f in stack]


def _create(path: Path) -> IO[str]:
    try:
        return open(path, "x", encoding="utf-8")  # noqa: SIM115
    except FileExistsError as err:
        raise DoctorError(
            f"{path} already exists: dora-doctor does not overwrite files, "
            "choose another --record path"
        ) from err
    except OSError as err:
        raise DoctorError(f"cannot create {path}: {err.strerror}") from err
