"""Errors a user can cause. Each one says where (`path:line`) and what is wrong."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


def suggest(word: str, choices: Iterable[str]) -> str:
    """A ` (did you mean 'x'?)` suffix for typos, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class RenewdError(Exception):
    """Base class of every error renewd reports without a traceback."""


@dataclass(frozen=True)
class Problem:
    """One finding in a config, policy or template file."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.message}"
            if self.line
            else f"{self.path}: {self.message}"
        )


class ProblemsError(RenewdError):
    """A file (or several) failed validation; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UnusableFile(ProblemsError):
    """A file could not be read at all (missing, unreadable, not text): nothing in it is checked."""


class LockBusy(RenewdError):
    """Another renewd holds the ledger."""


class SnapshotError(RenewdError):
    """The file is not a snapshot at all (wrong header, binary, empty)."""
