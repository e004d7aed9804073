"""An account's money through one day's plan: one balance, in one currency, shared in order.

Mailboxes of one account are taken in the plan's order (expiry, then mailbox id). A renewal made
in the plan spends its fee; a renewal still to come, before a later mailbox's, promises it. What
a mailbox sees is `Funds`: the balance it can see and what earlier renewals have claimed of it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

ZERO = Decimal(0)


class Funds(NamedTuple):
    """The money one renewal can count on.

    `balance` is what the account holds once the charges before this one have been made (the
    snapshot's balance, less renewd's charges the snapshot cannot show yet, less those made
    earlier in the same plan); `committed` is what renewals of the same account due before this
    one, but not yet made, will take of it. A tuple: every decision carries one, and a big
    day's or range's decisions go to disk and back.
    """

    balance: Decimal
    committed: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return self.balance - self.committed

    def shortfall(self, fee: Decimal) -> Decimal:
        """How much must be added for `fee` to be covered after the renewals that come first."""
        return max(fee - self.available, ZERO)


class Purse:
    """One account's money as the plan goes through its mailboxes in order."""

    def __init__(self, balance: Decimal, unseen: Decimal = ZERO) -> None:
        self.balance = balance - unseen
        self.committed = ZERO

    @property
    def funds(self) -> Funds:
        return Funds(self.balance, self.committed)

    def spend(self, fee: Decimal) -> None:
        """A renewal made in this plan: the money is gone before the next mailbox's turn."""
        self.balance -= fee

    def promise(self, fee: Decimal) -> None:
        """A renewal to come before the next mailbox's: the money is spoken for."""
        self.committed += fee
