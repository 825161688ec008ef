"""Exceptions raised by perpabm, and the helper that words them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """An invalid parameter: the message names the field and the allowed values."""


class MarginError(ValueError):
    """A trade or withdrawal that would leave an account below its initial margin."""


class StorageError(OSError):
    """A results folder that could not be written during a run (disk full, read-only,
    removed): the message names the folder and the cause, and says that the batches
    written before it are intact and a re-run resumes."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by the user (Ctrl-C): the message says how many of its paths are saved
    and where, and how to go on."""

    def __init__(self, saved: int, planned: int, out: str | None) -> None:
        self.saved, self.planned, self.out = saved, planned, out
        if out is None:
            text = (f"interrupted after {saved} of {planned} paths; nothing was saved "
                    f"(give an out folder to make a run resumable)")
        else:
            text = (f"interrupted: {saved} of {planned} paths are saved in {out}; run the "
                    f"same command again to resume")
        super().__init__(text)


def closest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' for the closest of `choices`, or '' if none is close."""
    match = difflib.get_close_matches(str(name), list(choices), n=1)
    return f' (did you mean "{match[0]}"?)' if match else ""


def one_of(field: str, value: object, choices: Iterable[str]) -> str:
    """Message for a name that is not one of `choices`, suggesting the closest."""
    choices = list(choices)
    allowed = ", ".join(f'"{c}"' for c in choices)
    return f"{field} must be one of {allowed}; got {value!r}{closest(str(value), choices)}"
