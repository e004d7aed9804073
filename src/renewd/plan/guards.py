"""Nothing destructive on bad data: the checks that hold deletions and deductions back (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

from renewd.config.model import GuardSettings
from renewd.core.model import Anchor, Kind, Mailbox

EXPIRED_SHARE_FROM = 100  # rows: a smaller snapshot is too small to judge by the share expired


def mass_hold(
    deletions: int, rows_read: int, last_rows: int | None, settings: GuardSettings, expired: int = 0
) -> str:
    """Why this run's deletions and deductions must wait, or "" when the data looks sane.

    A wrong export (every mailbox expired, half the rows missing) looks like mass deletion or a
    shrunken snapshot; both hold everything destructive until an operator says otherwise.
    """
    if rows_read >= EXPIRED_SHARE_FROM and expired > settings.max_expired_share * rows_read:
        share = f"{expired / rows_read:.0%}"
        return f"{expired} of {rows_read} mailboxes ({share}) appear expired: a wrong export?"
    limit = max(settings.min_deletions, math.floor(settings.max_deletion_share * rows_read))
    if deletions > limit:
        share = f"{settings.max_deletion_share:.2%}"
        return f"{deletions} deletions exceed the limit of {limit} ({share} of {rows_read} rows)"
    if last_rows and rows_read < last_rows * (1 - settings.max_shrink_share):
        share = f"{settings.max_shrink_share:.0%}"
        return f"the snapshot shrank from {last_rows} to {rows_read} rows (more than {share})"
    return ""


def open_row_verdict(
    row: Mapping[Any, Any],
    mailbox: Mailbox | None,
    rejected: bool,
    today: date,
    ttl_days: int,
    held: bool,
) -> tuple[str, str]:
    """What to do today with an outbox row left open by an earlier run: go, skip, or cancel.

    The row was decided on an earlier day's data; today's snapshot has the last word. A new
    cycle (a renewal, a changed date) or a vanished mailbox cancels it; a rejected row today
    only postpones it; a message too old to be true is dropped rather than sent late.
    """
    if rejected:
        return "skip", "today's row for this mailbox was rejected"
    if mailbox is None:
        return "cancel", "the mailbox is no longer in the snapshot"
    anchor = (
        mailbox.expires_on if row["anchor"] == Anchor.EXPIRY.value else mailbox.domain_expires_on
    )
    if anchor != row["cycle"]:
        return "cancel", f"the snapshot now shows {anchor} instead of {row['cycle']}: a new cycle"
    if row["kind"] == Kind.NOTIFY.value and (today - row["day"]).days > ttl_days:
        return "cancel", f"not sent within {ttl_days} days of its day; too late to be true"
    if row["kind"] != Kind.NOTIFY.value and held:
        return "skip", "this run holds deletions and deductions"
    return "go", ""


def first_sight(first_seen: date | None, today: date) -> str:
    """A deletion needs renewd to have seen the mailbox expired and unrenewed on an earlier day,
    in another snapshot (the ledger hides sightings in a file of the same SHA-256 as today's)."""
    if first_seen is None or first_seen >= today:
        return (
            "first sight: renewd has not seen this mailbox expired on an earlier run "
            "of another snapshot"
        )
    return ""
