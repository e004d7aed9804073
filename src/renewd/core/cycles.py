"""A mailbox's cycle: the paid period that ends on its `expires_on`, and which steps belong to it.

One model for every command: the core decides with it, `simulate` renews with it, `run` records
the period it paid for with it, and messages announce the new expiry from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from renewd.core.dates import add_months, fits_anchor
from renewd.core.model import Mailbox


@dataclass(frozen=True, slots=True)
class CycleState:
    """What earlier runs know about one cycle (one `expires_on` value) of a mailbox.

    `anchor_day`: the day of the month renewd's own renewal into this cycle was anchored on.
    `began`: the day this cycle began, when later than the end of the one before it: renewd
    renewed it after that end, or saw a renewal made elsewhere only then.
    `undelivered`: the channels whose last message of this cycle did not arrive (it failed when
    sent, or a receipt said so: a bounce, Twilio's `undelivered`).
    """

    renewed: bool = False
    reminded: bool = False
    anchor_day: int | None = None
    began: date | None = None
    undelivered: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Cycle:
    """The period ending on `end` (the first day without service); a renewal moves `expires_on`
    to `next_end`, on the month's `anchor_day`. A step on or before `began` belongs to no one:
    it is never sent."""

    end: date
    next_end: date
    anchor_day: int
    began: date

    def holds(self, day: date) -> bool:
        """Whether a step falling on `day` belongs to this cycle."""
        return day > self.began


def cycle_of(mailbox: Mailbox, state: CycleState) -> Cycle:
    """The mailbox's current cycle.

    The anchor day is the one renewd renewed on, else the snapshot's `anchor_day` when it fits
    `expires_on` (a misfit is ignored), else the day of `expires_on`. The cycle begins where the
    previous one ended (`expires_on` less one period), or later when earlier runs know it began
    later.
    """
    given = mailbox.anchor_day
    if given is not None and not fits_anchor(mailbox.expires_on, given):
        given = None
    anchor = state.anchor_day or given or mailbox.expires_on.day
    end, months = mailbox.expires_on, mailbox.renewal_months
    start = add_months(end, -months, anchor)
    began = max(start, state.began) if state.began else start
    return Cycle(end, add_months(end, months, anchor), anchor, began)
