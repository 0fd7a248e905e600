"""What a recording holds once read: typed records, never raw JSON.

The record types themselves are the shared dataclasses of :mod:`dora_doctor.model` (and
:class:`~dora_doctor.logs.events.LogEvent`), the same objects the live sampler produces, so
analysis runs the same on a live session and on a file read back years later. This module
adds only what exists because of the file: the schema's name, the :class:`Recording` that
groups the records, and the account of the records the reader had to skip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from dora_doctor.logs.events import LogEvent
from dora_doctor.model import (
    CpuSegment,
    Dataflow,
    GilSegment,
    LastDump,
    LocalsSnapshot,
    ProcessEvent,
    StackSegment,
)

SCHEMA_NAME = "dora-doctor.recording"
SCHEMA_VERSION = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_VERSION}"

Record = Union[
    StackSegment, GilSegment, CpuSegment, ProcessEvent, LogEvent, LocalsSnapshot, LastDump
]

# A few reasons are enough to tell a user what kind of damage it is; a file of a million bad
# lines must not keep a million strings.
KEPT_REASONS = 5


@dataclass
class SkippedRecords:
    """Records the reader could not use: how many, and the first few reasons why.

    A record is skipped whole (never half-used), so what the analysis sees was all checked.
    """

    count: int = 0
    reasons: List[str] = field(default_factory=list)

    def summary(self) -> str:
        """``3 malformed records skipped``: the one line that tells the user."""
        return f"{self.count} malformed record{'' if self.count == 1 else 's'} skipped"

    def add(self, reason: str, where: Optional[int] = None) -> None:
        self.count += 1
        if len(self.reasons) < KEPT_REASONS:
            self.reasons.append(f"line {where}: {reason}" if where is not None else reason)


@dataclass
class Recording:
    """A recording read back: the checked header and every valid record, in file order.

    ``header`` is the header line as a dict whose known keys were checked (see
    :func:`~dora_doctor.recording.codec.decode_header`); keys this version does not know are
    kept, as a newer writer or ``merge`` may add them.
    """

    path: Optional[Path]
    header: Dict[str, Any]
    dataflows: List[Dataflow]
    stacks: List[StackSegment] = field(default_factory=list)
    gil: List[GilSegment] = field(default_factory=list)
    cpu: List[CpuSegment] = field(default_factory=list)
    events: List[ProcessEvent] = field(default_factory=list)
    logs: List[LogEvent] = field(default_factory=list)
    locals: List[LocalsSnapshot] = field(default_factory=list)
    last_dumps: List[LastDump] = field(default_factory=list)  # "lastdump" records
    skipped_records: SkippedRecords = field(default_factory=SkippedRecords)
    truncated: bool = False  # the last line was cut off (the writer died mid-line): not damage

    @property
    def malformed_lines(self) -> int:
        """Records skipped as malformed (kept under its old name for its readers)."""
        return self.skipped_records.count

    @property
    def sample_rate(self) -> float:
        """Samples per second per node the sampler asked py-spy for (100 if unknown)."""
        sampler = self.header.get("sampler")
        rate = sampler.get("rate") if isinstance(sampler, dict) else None
        return float(rate) if isinstance(rate, (int, float)) and rate > 0 else 100.0

    @property
    def dora_version(self) -> Optional[str]:
        value = self.header.get("dora_version")
        return str(value) if value else None
