"""Writing to the history from a command whose main job is something else.

A history that cannot be written (a read-only file, a full disk, a DB another process holds
for longer than the busy timeout) costs one line on stderr, never the command's own result:
the diagnosis is printed either way.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence

from dora_doctor.analysis.findings import Diagnosis
from dora_doctor.history import entries, store
from dora_doctor.recording.model import Recording

if TYPE_CHECKING:
    from dora_doctor.analysis.postmortem import Postmortem


def add_stops(
    rows: Sequence[store.StopRow], db_path: Optional[Path], max_page_count: Optional[int] = None
) -> Optional[int]:
    """Add the stops; how many were new, or None (and one line on stderr) if it failed."""
    path = db_path or store.default_path()
    try:
        db = store.connect(path, max_page_count)
        try:
            return sum(1 for row in rows if store.add_stop(db, row))
        finally:
            db.close()
    except (sqlite3.Error, OSError) as err:
        print(
            f"dora-doctor: warning: history not written to {path}: {_reason(err)} "
            "(--no-history skips it)",
            file=sys.stderr,
        )
        return None


def _reason(err: Exception) -> str:
    text = str(err) or type(err).__name__
    if isinstance(err, OSError) and err.strerror:
        text = err.strerror
    return " ".join(text.split())[:200]


def record(
    recording: Recording,
    diagnosis: Diagnosis,
    writer: str,
    db_path: Optional[Path],
    recording_path: Optional[Path] = None,
    descriptor: Optional[Path] = None,
    name: Optional[str] = None,
) -> Optional[int]:
    """The history entry of one diagnosed recording (``inspect``, one rehearsal run)."""
    rows = entries.stops_from(
        recording,
        diagnosis,
        writer,
        recording_path,
        entries.descriptor_hash(descriptor),
        name,
    )
    return add_stops(rows, db_path)


def record_postmortem(
    result: "Postmortem",
    writer: str,
    db_path: Optional[Path],
    recording_path: Optional[Path] = None,
) -> Optional[int]:
    """Every stop a post-mortem found, one per dataflow of the logs."""
    from dora_doctor.analysis.postmortem import recordings_from_scan

    rows: List[store.StopRow] = []
    for recording in recordings_from_scan(result.scan):
        rows.extend(entries.stops_from(recording, result.report, writer, recording_path))
    return add_stops(rows, db_path)
