"""What the core needs to know about earlier runs, behind two small interfaces.

`Past` is what a day's planning asks of the ledger before it reads the snapshot; `History` is
what one part of the day needs about its mailboxes. The ledger implements both from the database;
`MemoryHistory` serves dry-run without a ledger and the simulator, which applies each day's plan
to it before the next day.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from renewd.core.cycles import CycleState
from renewd.core.model import Anchor, Decision, Kind, StepKey


class History(Protocol):
    def done(self, key: StepKey) -> bool:
        """True when this step was taken or superseded before: it is never done again."""

    def cycle(self, mailbox_id: str, cycle: date) -> CycleState:
        """What is known of the mailbox's cycle ending on `cycle`: renewed or reminded in it,
        and, when renewd renewed into it or saw it begin late, its anchor day and start."""

    def unseen_debits(self, account_id: str) -> Decimal:
        """renewd's own deductions that the snapshot's balance cannot include yet."""

    def first_seen(self, mailbox_id: str, cycle: date) -> date | None:
        """The first day renewd saw the mailbox expired and unrenewed in this cycle."""

    def began_now(self) -> Mapping[tuple[str, date], date]:
        """Cycles renewed elsewhere that this history saw for the first time, with the day: a run
        keeps them, so that the day a cycle began does not move."""


class Past(Protocol):
    def catch_up_since(self) -> date | None:
        """The last day whose steps are all done: a late run evaluates the days after it."""

    def watched(self, moment: datetime) -> set[str]:
        """Mailboxes whose row matters beyond the plan, for a snapshot taken at `moment`."""

    def history(
        self,
        mailbox_ids: Collection[str],
        account_ids: Collection[str],
        snapshot_time: datetime,
        visible_expiry: Mapping[str, date],
        today: date,
    ) -> History:
        """What earlier runs did to these mailboxes and accounts."""


FRESH = CycleState()  # a cycle nothing is known of: most of them, shared


class MemoryHistory:
    """History kept in memory; `record` applies a day's decisions to it."""

    def __init__(self) -> None:
        self._done: set[tuple[str, str, date, int]] = set()  # StepKey's fields: cheaper to hash
        self._renewed: set[tuple[str, date]] = set()
        self._reminded: set[tuple[str, date]] = set()
        self._renewals: dict[tuple[str, date], tuple[int, date]] = {}  # new cycle: anchor, start

    def done(self, key: StepKey) -> bool:
        return (key.mailbox_id, key.rule, key.cycle, key.step) in self._done

    def cycle(self, mailbox_id: str, cycle: date) -> CycleState:
        key = (mailbox_id, cycle)
        renewal = self._renewals.get(key)
        renewed, reminded = key in self._renewed, key in self._reminded
        if renewal is None:
            return CycleState(renewed, reminded) if renewed or reminded else FRESH
        return CycleState(renewed, reminded, *renewal)

    def unseen_debits(self, account_id: str) -> Decimal:
        """Nothing: the simulator lowers the balance itself when it applies a deduction."""
        return Decimal(0)

    def first_seen(self, mailbox_id: str, cycle: date) -> date | None:
        """The simulator keeps no sightings: it applies no deletion guard."""
        return None

    def began_now(self) -> Mapping[tuple[str, date], date]:
        """Nothing: the simulator makes every renewal itself."""
        return {}

    def record(self, decisions: Iterable[Decision]) -> None:
        """Mark decisions done: taken and superseded steps alike."""
        for decision in decisions:
            self._done.add((decision.mailbox_id, decision.rule, decision.cycle, decision.step))
            if decision.superseded_by or decision.anchor is not Anchor.EXPIRY:
                continue
            key = (decision.mailbox_id, decision.cycle)
            if decision.kind is Kind.DEDUCT:
                self._renewed.add(key)
                if decision.next_expiry is not None:
                    began = max(decision.cycle, decision.date)
                    self._renewals[decision.mailbox_id, decision.next_expiry] = (
                        decision.anchor_day,
                        began,
                    )
            elif decision.kind is Kind.NOTIFY:
                self._reminded.add(key)
