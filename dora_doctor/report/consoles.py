"""The two consoles every command writes to, honouring --no-color and NO_COLOR, and the
console terminal renderers draw into.

NO_COLOR asks for no colour; people who set it (or pass --no-color) reading logs at 2 a.m.
also want no bold or italic escape codes in what they pipe or paste, so styles go too.

Renderers return text: they draw on a console writing to a string, set up like the real
stdout (width, colour system, terminal or not), and the command prints what they return.
Every string from a target goes in as a rich ``Text`` made by :func:`text`, never as a
``str``: rich reads markup (``[link=…]``) and emoji codes in a ``str``, and the terminal
reads control sequences in anything, so names are escaped for both.
"""

from __future__ import annotations

import io
import os
from typing import Optional

from rich.console import Console
from rich.style import StyleType
from rich.text import Text

from dora_doctor.report import RenderOptions
from dora_doctor.textsafe import for_terminal


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


def render_options(show_paths: bool = False) -> RenderOptions:
    """Render options for text printed on stdout as it is now."""
    screen = out()
    return RenderOptions(
        show_paths=show_paths,
        width=screen.width,
        color_system=screen.color_system,
        terminal=screen.is_terminal,
        highlight=not plain(),
    )


def capture(options: RenderOptions) -> Console:
    """A console drawing into a string as stdout would; read it with :func:`captured`."""
    return Console(
        file=io.StringIO(),
        width=options.width,
        color_system=options.color_system,  # type: ignore[arg-type]
        force_terminal=options.terminal,
        highlight=options.highlight,
        legacy_windows=False,
    )


def captured(console: Console) -> str:
    handle = console.file
    assert isinstance(handle, io.StringIO)
    return handle.getvalue()


def text(value: str, style: Optional[StyleType] = None) -> Text:
    """Target-controlled text as rich text: no markup, no emoji codes, controls escaped."""
    return Text(for_terminal(value), style=style or "")
