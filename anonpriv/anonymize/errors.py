"""What can go wrong in ``anonpriv anonymize``, as exceptions whose message names the problem and
the fix; :func:`anonpriv.anonymize.cli.main` prints such a message as one line and exits with 1.

This module imports nothing heavy (the command's argument checks raise these before torch is loaded).
"""

from __future__ import annotations


class AnonymizeError(RuntimeError):
    """Bad input to ``anonpriv anonymize``; the message names the problem and the fix."""


class VideoWriteError(AnonymizeError):
    """One video could not be encoded (its output is not kept); the message names the input."""


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of ``error``'s message (its type's name when it has none), cut to ``limit``
    characters, for quoting a library's error inside one of ours."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
