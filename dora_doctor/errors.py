"""One error type for everything a user can fix, caught once in ``cli.main``.

Library code raises :class:`DoctorError` instead of printing or exiting, so the same
functions are usable from Python and the CLI turns every such error into a single line
on stderr with a meaningful exit code (2: the input or environment is wrong, 1: the work
itself failed).
"""

from __future__ import annotations

USAGE = 2
FAILURE = 1


class DoctorError(Exception):
    """A problem the user can act on; ``str(err)`` is the one line shown to them."""

    def __init__(self, message: str, exit_code: int = USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
