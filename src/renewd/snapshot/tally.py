"""What a scan of a snapshot counts and keeps: rows read and rejected, the errors, and what the
checks that need every row (a repeated mailbox_id, an account whose rows disagree) keep of each.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from renewd.core.model import RowError
from renewd.snapshot.claims import Claims
from renewd.snapshot.spill import Place, Spill

if TYPE_CHECKING:
    import numpy as np

KEPT_ERRORS = 1000

# What the other process of a split read sends back with its counts: where its claims are.
Claimed = tuple[list[list[Place]], list[list[Place]]]


@dataclass(frozen=True)
class Found:
    """A row the second pass looked at again: its id, and its account if it is valid."""

    line: int
    mailbox_id: str
    valid: bool
    account_id: str = ""
    balance: str = ""
    currency: str = ""


class Tally:
    """Counts and errors of one scan, and the claims of its rows: 8 bytes of hash and a line
    number per row (on disk past a limit), not the ids. Keys that repeat are confirmed by a
    second pass, which looks only at their lines (`census`) and notes what is there (`found`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows_read = 0
        self.rejected = 0
        self.errors: list[RowError] = []
        self.rejected_ids: set[str] = set()
        self.expired = 0  # valid rows whose expires_on is on or before `Wanted.today`
        self.duplicates: set[str] = set()
        self.conflicting_accounts: set[str] = set()
        self.conflicts: list[RowError] = []
        self._ids = Claims()
        self._accounts = Claims(by_value=True)
        self._marks = array("q")  # per block read: line before it, its last line, its bytes

    def reject(self, error: RowError) -> None:
        self.rows_read += 1
        self.rejected += 1
        if error.mailbox_id:
            self.rejected_ids.add(error.mailbox_id)
        if len(self.errors) < KEPT_ERRORS:
            self.errors.append(error)

    def claim(
        self,
        lines: Sequence[int],
        ids: Iterable[str],
        accounts: Iterable[str] = (),
        money: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Valid rows at `lines`, with their ids, accounts and (balance, currency); rows
        rejected for another reason give only their ids."""
        self._ids.add(map(hash, ids), lines)
        if accounts:
            self._accounts.add(map(hash, accounts), lines, map(hash, money))

    def mark(self, before: int, last: int, start: int, end: int) -> None:
        """Lines `before` + 1 to `last` were read from bytes `start` to `end`."""
        self._marks.extend((before, last, start, end))

    def marked(self, lines: Sequence[int]) -> Iterator[tuple[int, int, int]]:
        """The blocks marked that hold some of these lines (in order), in order: the line
        before each, and where its bytes are."""
        marks = sorted(zip(*[iter(self._marks)] * 4, strict=True))
        for before, last, start, end in marks:
            if bisect_right(lines, last) > bisect_right(lines, before):
                yield before, start, end

    def census(self) -> np.ndarray:
        """The lines the second pass must look at (none: no pass); forgets the claims."""
        import numpy as np

        lines = np.union1d(self._ids.suspects(), self._accounts.suspects())
        self._ids.close()
        self._accounts.close()
        return lines

    def spill_to(self, spill: Spill) -> None:
        """Write the claims past the limit to `spill`, which another process reads."""
        self._ids = Claims(spill=spill)
        self._accounts = Claims(by_value=True, spill=spill)

    def claims(self, spill: Spill) -> Claimed:
        """Hand the claims over to another process's scan, through `spill`."""
        claimed = (self._ids.write(spill), self._accounts.write(spill))
        self._ids, self._accounts = Claims(), Claims(by_value=True)
        return claimed

    def merge(self, other: Tally, claimed: Claimed, spill: Spill) -> None:
        """Add the counts and claims of the other half of a file read in two."""
        self.rows_read += other.rows_read
        self.rejected += other.rejected
        self.expired += other.expired
        self.errors += other.errors[: KEPT_ERRORS - len(self.errors)]
        self.rejected_ids |= other.rejected_ids
        self._marks.extend(other._marks)
        self._ids.adopt(claimed[0], spill)
        self._accounts.adopt(claimed[1], spill)
