"""Errors a user can cause. Each one says where (`path:line`) and what is wrong."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


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


class LockBusy(RenewdError):
    """Another renewd holds the ledger."""


class SnapshotError(RenewdError):
    """The file is not a snapshot at all (wrong header, binary, empty)."""
