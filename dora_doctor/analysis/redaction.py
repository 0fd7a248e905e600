"""Local variables may hold secrets: every report shows their names and sizes, never their
values, unless the user asks with --show-locals.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, TypeVar

from dora_doctor.analysis.findings import LocalValue
from dora_doctor.model import LocalsSnapshot, LocalVar

if TYPE_CHECKING:
    from dora_doctor.recording.model import Recording

R = TypeVar("R", bound="Recording")


def redact_value(value: str) -> str:
    """The name stays (it tells what the frame held), the value goes; its length is kept
    so a reader can still tell an empty string from a large buffer."""
    return f"<redacted: {len(value)} chars>"


def redact(snapshots: Sequence[LocalsSnapshot]) -> List[LocalsSnapshot]:
    return [
        dataclasses.replace(
            snapshot,
            threads=[
                dataclasses.replace(
                    thread,
                    frames=[
                        dataclasses.replace(
                            frame,
                            variables=[
                                LocalVar(v.name, v.arg, redact_value(v.value))
                                for v in frame.variables
                            ],
                        )
                        for frame in thread.frames
                    ],
                )
                for thread in snapshot.threads
            ],
        )
        for snapshot in snapshots
    ]


def redacted(recording: R, show_locals: bool = False) -> R:
    """``recording`` with every local's value redacted (itself when ``show_locals``)."""
    if show_locals or not recording.locals:
        return recording
    return dataclasses.replace(recording, locals=redact(recording.locals))


def recorded(recording: "Recording") -> bool:
    """Was the recording made with ``--locals``?"""
    sampler = recording.header.get("sampler")
    return bool(recording.locals) or (isinstance(sampler, dict) and bool(sampler.get("locals")))


def node_values(
    recording: "Recording", dataflow: str, node: str, show_locals: bool = False
) -> Optional[List[LocalValue]]:
    """One node's variables, flat, for the findings; None when locals were not recorded.
    Redacted unless ``show_locals``: a report built by default cannot leak a value."""
    if not recorded(recording):
        return None
    snapshots = [s for s in recording.locals if s.dataflow == dataflow and s.node == node]
    if not show_locals:
        snapshots = redact(snapshots)
    values: List[LocalValue] = []
    for snapshot in snapshots:
        for thread in snapshot.threads:
            for frame in thread.frames:
                for var in frame.variables:
                    values.append(
                        LocalValue(
                            moment=snapshot.moment,
                            thread=thread.name or str(thread.thread_id),
                            function=frame.function,
                            file=frame.file,
                            line=frame.line,
                            name=var.name,
                            value=var.value,
                            arg=var.arg,
                        )
                    )
    return values


def by_frame(values: Sequence[LocalValue]) -> Dict[str, List[LocalValue]]:
    """Values grouped under one heading per moment, thread and frame, in order."""
    groups: Dict[str, List[LocalValue]] = {}
    for value in values:
        key = (
            f"at the {value.moment}: {value.thread} in {value.function} ({value.file}:{value.line})"
        )
        groups.setdefault(key, []).append(value)
    return groups
