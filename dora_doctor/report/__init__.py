"""Renderers: each draws an analysis one way and returns the text; none of them samples,
discovers or decides anything.

Every renderer has the same shape (:class:`Renderer`): a ``name`` for ``--format``, the
``suffix`` of the file it writes, and ``render(subject, options) -> str``. The subject is an
:class:`~dora_doctor.analysis.result.Analysis` for ``inspect`` and ``report``, a post-mortem
or a rehearsal for their commands. Which renderers exist, and picking one, is
``report/registry.py``; printing or writing the text is the command's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, TypeVar

S = TypeVar("S", contravariant=True)


@dataclass(frozen=True)
class RenderOptions:
    """How to render, as the user asked; the terminal fields describe the screen the text
    will be printed on (consoles.render_options() reads them from stdout)."""

    show_paths: bool = False
    width: int = 100
    color_system: Optional[str] = None  # None: no colour (NO_COLOR, --no-color, a pipe)
    terminal: bool = False
    highlight: bool = False


class Renderer(Protocol[S]):
    name: str
    suffix: str  # the file suffix its output belongs in; "" for the screen only

    def render(self, subject: S, options: RenderOptions) -> str: ...
