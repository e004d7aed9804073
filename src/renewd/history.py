"""What the core needs to know about earlier runs, behind one small interface.

The ledger implements it from the database; `MemoryHistory` serves dry-run without a ledger and
the simulator, which applies each day's plan to it before the next day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Protocol

from renewd.facts import CycleState
from renewd.model import Anchor, Decision, Kind, StepKey


class History(Protocol):
    def done(self, key: StepKey) -> bool:
        """True when this step was taken or superseded before: it is never done again."""

    def cycle(self, mailbox_id: str, cycle: date) -> CycleState:
        """Whether the mailbox was already renewed or reminded in the cycle ending on `cycle`."""

    def unseen_debits(self, account_id: str) -> Decimal:
        """renewd's own deductions that the snapshot's balance cannot include yet."""

    def first_seen(self, mailbox_id: str, cycle: date) -> date | None:
        """The first day renewd saw the mailbox expired and unrenewed in this cycle."""


class MemoryHistory:
    """History kept in memory; `record` applies a day's decisions to it."""

    def __init__(self) -> None:
        self._done: set[StepKey] = set()
        self._renewed: set[tuple[str, date]] = set()
        self._reminded: set[tuple[str, date]] = set()

    def done(self, key: StepKey) -> bool:
        return key in self._done

    def cycle(self, mailbox_id: str, cycle: date) -> CycleState:
        key = (mailbox_id, cycle)
        return CycleState(renewed=key in self._renewed, reminded=key in self._reminded)

    def unseen_debits(self, account_id: str) -> Decimal:
        """Nothing: the simulator lowers the balance itself when it applies a deduction."""
        return Decimal(0)

    def first_seen(self, mailbox_id: str, cycle: date) -> date | None:
        """The simulator keeps no sightings: it applies no deletion guard."""
        return None

    def record(self, decisions: Iterable[Decision]) -> None:
        """Mark decisions done: taken and superseded steps alike."""
        for decision in decisions:
            self._done.add(decision.key)
            if decision.superseded_by or decision.anchor is not Anchor.EXPIRY:
                continue
            key = (decision.mailbox_id, decision.cycle)
            if decision.kind is Kind.DEDUCT:
                self._renewed.add(key)
            elif decision.kind is Kind.NOTIFY:
                self._reminded.add(key)
