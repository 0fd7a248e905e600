"""Strings from a target (node and dataflow ids, thread, function and file names, log lines)
are text for a terminal, never instructions to it.

A node id holding ``ESC[2J`` would clear the user's screen, an OSC 8 sequence would turn a
name into a link to anywhere, and a bidi override would make ``evil.py`` read as ``yp.live``.
So every such string passes :func:`for_terminal` on its way out: control characters and
bidi controls come out as visible escapes (``\\x1b``, ``\\u202e``), everything else as it was.
Rich markup is a separate matter, handled where rich is used (report/consoles.py): this
module knows nothing of rich.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls (ESC, CSI and OSC introducers among them), and the bidi
# controls that reorder what a reader sees: embeddings and overrides (U+202A-202E), isolates
# (U+2066-2069) and the implicit marks (U+200E, U+200F, U+061C). Line and paragraph
# separators (U+2028, U+2029) end a line in some terminals: escaped too.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEP_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _escaped(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str, keep_lines: bool = False) -> str:
    """``text`` with every control character shown as an escape; with ``keep_lines`` tab
    and newline stay (for multi-line layout the caller owns, never for a name)."""
    return (_UNSAFE_KEEP_LINES if keep_lines else _UNSAFE).sub(_escaped, text)
