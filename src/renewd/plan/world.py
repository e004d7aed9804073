"""A group of whole accounts as the days change them: what `simulate`, `forecast` and `diff` play.

Each day the policy is planned over the mailboxes near a step and the plan's actions are applied
before the next day: a deduction lowers the account's balance and moves `expires_on` where the
cycle model says (a new cycle), a deletion removes the mailbox.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date
from decimal import Decimal

from renewd.core.history import MemoryHistory
from renewd.core.model import Anchor, Decision, Kind, Mailbox
from renewd.plan.evaluate import DayPlan, Evaluator, Window

# Money customers add, by day and account: "what if they top up 500 on 2027-02-01".
TopUps = Mapping[date, Mapping[str, Decimal]]


class World:
    """The group's mailboxes, each carrying its account's balance of the day, indexed by the
    dates that put them on a step, so a day touches only the mailboxes near one. `paid_on`
    counts the paid mailboxes by expiry date (those in grace are read from it)."""

    def __init__(
        self, group: list[Mailbox], disputed: set[str], paid: frozenset[str] = frozenset()
    ) -> None:
        self.disputed = {m.account_id for m in group} & disputed
        self.paid = paid
        self.paid_on: Counter[date] = Counter()
        # One balance per account, the first row's, kept here and given to its mailboxes as
        # they come near a step; a disputed account keeps each row's own (it gets no money
        # action).
        self.balances: dict[str, Decimal] = {}
        for mailbox in sorted(group, key=lambda m: m.line):
            if mailbox.account_id not in self.disputed:
                self.balances.setdefault(mailbox.account_id, mailbox.balance)
        self.mailboxes: dict[str, Mailbox] = {}
        self.on: dict[Anchor, defaultdict[date, set[str]]] = {
            anchor: defaultdict(set) for anchor in Anchor
        }
        for mailbox in group:
            self.mailboxes[mailbox.mailbox_id] = mailbox
            self._index(mailbox, add=True)

    def current(self, window: Window) -> list[Mailbox]:
        """The mailboxes the day's window can reach, with their account's balance."""
        ids: set[str] = set()
        for anchor, dates in window.due.items():
            on = self.on[anchor]
            for day in dates:
                ids |= on.get(day, set())
        found = []
        for mailbox_id in sorted(ids):
            mailbox = self.mailboxes[mailbox_id]
            balance = self.balances.get(mailbox.account_id, mailbox.balance)
            if mailbox.balance != balance:
                mailbox = self.mailboxes[mailbox_id] = replace(mailbox, balance=balance)
            found.append(mailbox)
        return found

    def top_up(self, account_id: str, amount: Decimal) -> None:
        """Money the customer adds: the account's rows show it when they next come near a step.
        A disputed account gets no money action, so what it adds changes nothing here."""
        if account_id in self.balances:
            self.balances[account_id] += amount

    def expiring(self, day: date) -> list[Mailbox]:
        """The mailboxes whose `expires_on` is `day`."""
        return [self.mailboxes[i] for i in self.on[Anchor.EXPIRY].get(day, ())]

    def apply(self, actions: Iterable[Decision]) -> None:
        for decision in actions:
            mailbox = self.mailboxes.get(decision.mailbox_id)
            if mailbox is None:
                continue
            if decision.kind is Kind.DEDUCT and decision.amount is not None:
                self._index(mailbox, add=False)
                self.mailboxes[mailbox.mailbox_id] = _renewed(mailbox, decision)
                self._index(self.mailboxes[mailbox.mailbox_id], add=True)
                if mailbox.account_id in self.balances:
                    self.balances[mailbox.account_id] -= decision.amount
            elif decision.kind is Kind.DELETE:
                self._index(mailbox, add=False)
                del self.mailboxes[mailbox.mailbox_id]

    def _index(self, mailbox: Mailbox, add: bool) -> None:
        for anchor in Anchor:
            day = mailbox.anchor_date(anchor)
            if day is not None:
                ids = self.on[anchor][day]
                if add:
                    ids.add(mailbox.mailbox_id)
                else:
                    ids.discard(mailbox.mailbox_id)
        if mailbox.edition in self.paid:
            self.paid_on[mailbox.expires_on] += 1 if add else -1


def play(
    evaluator: Evaluator,
    world: World,
    windows: Iterable[Window],
    top_ups: TopUps | None = None,
) -> Iterator[DayPlan]:
    """Each day's plan for the world, in order. When a plan is yielded the world is as the day
    before left it; its actions are applied when the next plan is asked for (or the play ends),
    so a caller sees each day's world both before and after that day's actions. `top_ups` raise
    an account's balance at the start of their day."""
    history = MemoryHistory()
    for window in windows:
        for account_id, amount in (top_ups or {}).get(window.today, {}).items():
            world.top_up(account_id, amount)
        plan = evaluator.plan(world.current(window), window, history, world.disputed)
        history.record(plan.decisions)
        yield plan
        world.apply(plan.actions)


def _renewed(mailbox: Mailbox, deduction: Decision) -> Mailbox:
    """The mailbox in its next cycle, keeping the anchor day the renewal was made on."""
    assert deduction.next_expiry is not None  # noqa: S101 - the evaluator sets it on every decision
    return replace(mailbox, expires_on=deduction.next_expiry, anchor_day=deduction.anchor_day)
