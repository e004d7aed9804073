"""Nothing destructive on bad data: the checks that hold deletions and deductions back (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class GuardSettings:
    max_deletion_share: Decimal = Decimal("0.01")
    min_deletions: int = 10
    max_shrink_share: Decimal = Decimal("0.10")


def mass_hold(
    deletions: int, rows_read: int, last_rows: int | None, settings: GuardSettings
) -> str:
    """Why this run's deletions and deductions must wait, or "" when the data looks sane.

    A wrong export (every mailbox expired, half the rows missing) looks like mass deletion or a
    shrunken snapshot; both hold everything destructive until an operator says otherwise.
    """
    limit = max(settings.min_deletions, math.floor(settings.max_deletion_share * rows_read))
    if deletions > limit:
        share = f"{settings.max_deletion_share:.2%}"
        return f"{deletions} deletions exceed the limit of {limit} ({share} of {rows_read} rows)"
    if last_rows and rows_read < last_rows * (1 - settings.max_shrink_share):
        share = f"{settings.max_shrink_share:.0%}"
        return f"the snapshot shrank from {last_rows} to {rows_read} rows (more than {share})"
    return ""


def first_sight(first_seen: date | None, today: date) -> str:
    """A deletion needs renewd to have seen the mailbox expired and unrenewed on an earlier day."""
    if first_seen is None or first_seen >= today:
        return "first sight: renewd has not seen this mailbox expired on an earlier run"
    return ""
