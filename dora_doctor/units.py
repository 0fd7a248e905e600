"""Durations as users type them: dora's forms (``2s``, ``500ms``, ``1m``) and plain seconds."""

from __future__ import annotations

import re

from dora_doctor.errors import DoctorError

_DURATION = re.compile(r"^\s*(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s|m|h|min|sec|secs)?\s*$")
_SCALE = {
    None: 1.0,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "ms": 0.001,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds from ``2s``, ``500ms``, ``1m``, ``1.5`` …; a one-line error otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        raise DoctorError(
            f"{option} {text!r} is not a duration: write seconds (2, 0.5) or 2s, 500ms, 1m"
        )
    seconds = float(match["value"]) * _SCALE[match["unit"]]
    if seconds <= 0:
        raise DoctorError(f"{option} must be longer than zero, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The form dora's ``--grace-duration`` accepts, without losing precision."""
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{int(round(seconds * 1000))}ms"
