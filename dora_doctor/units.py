"""Durations as users type them: dora's forms (``2s``, ``500ms``, ``1m``) and plain seconds."""

from __future__ import annotations

import math
import re

from dora_doctor.errors import DoctorError

# ASCII digits only (re.ASCII): ``\d`` alone also takes ``٣`` and ``３``, which float() reads.
_DURATION = re.compile(
    r"[ \t]*(?P<value>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[ \t]*(?P<unit>ms|s|m|h|min|sec|secs)?[ \t]*",
    re.ASCII,
)
# No duration dora-doctor waits for is longer than a year; 400 digits would become inf.
LONGEST_S = 366 * 24 * 3600.0
_LONGEST_TEXT = 40
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
    """Seconds from ``2s``, ``500ms``, ``1m``, ``1.5`` …; a one-line error otherwise.

    Empty text, other scripts' digits, NaN, infinity, negative and absurd values are refused
    here, so that no caller can take them for "no limit"."""
    text = str(text)
    match = _DURATION.fullmatch(text) if len(text) <= _LONGEST_TEXT else None
    if not match:
        shown = text if len(text) <= _LONGEST_TEXT else text[:_LONGEST_TEXT] + "…"
        raise DoctorError(
            f"{option} {shown!r} is not a duration: write seconds (2, 0.5) or 2s, 500ms, 1m"
        )
    seconds = float(match["value"]) * _SCALE[match["unit"]]
    if not math.isfinite(seconds) or seconds > LONGEST_S:
        raise DoctorError(f"{option} {text!r} is too long: at most a year (8784h)")
    if seconds <= 0:
        raise DoctorError(f"{option} must be longer than zero, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The form dora's ``--grace-duration`` accepts, without losing precision."""
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{int(round(seconds * 1000))}ms"
