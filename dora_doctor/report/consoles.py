"""The two consoles every command writes to, honouring --no-color and NO_COLOR.

NO_COLOR asks for no colour; people who set it (or pass --no-color) reading logs at 2 a.m.
also want no bold or italic escape codes in what they pipe or paste, so styles go too.
"""

from __future__ import annotations

import os

from rich.console import Console


def plain() -> bool:
    return "NO_COLOR" in os.environ


def out() -> Console:
    """Reports: stdout."""
    return Console(color_system=None if plain() else "auto", highlight=not plain())


def err() -> Console:
    """Progress, live tables, warnings: stderr, long lines wrapped by the terminal."""
    return Console(
        stderr=True, soft_wrap=True, color_system=None if plain() else "auto", highlight=False
    )
