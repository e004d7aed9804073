"""The test clock: run the policy on every day of a range against an in-memory copy of the world."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from renewd.config.model import Config
from renewd.core.errors import RenewdError
from renewd.core.history import MemoryHistory
from renewd.core.model import Decision, Kind, Mailbox
from renewd.plan.evaluate import DayPlan, Evaluator
from renewd.policy.model import Policy
from renewd.snapshot.reader import Snapshot


class Simulation:
    """Days `start`..`end` in order; each day's plan is applied before the next day is planned.

    A deduction lowers the account's balance and moves `expires_on` where the cycle model says
    (`renewal_months` later, on the cycle's anchor day): a new cycle. A deletion removes the
    mailbox. Nothing is written outside this object.
    """

    def __init__(
        self, config: Config, policy: Policy, snapshot_path: Path, only: tuple[str, ...] = ()
    ) -> None:
        self.evaluator = Evaluator(policy)
        self.snapshot = Snapshot(snapshot_path, policy.editions, config.default_locale)
        mailboxes = {m.mailbox_id: m for m in self.snapshot}
        for duplicate in self.snapshot.duplicates:
            mailboxes.pop(duplicate, None)
        self.only = frozenset(only)
        unknown = sorted(self.only - mailboxes.keys())
        if unknown:
            raise RenewdError(f"mailbox not in the snapshot (or rejected): {', '.join(unknown)}")
        if only:
            accounts = {mailboxes[m].account_id for m in only}
            mailboxes = {k: m for k, m in mailboxes.items() if m.account_id in accounts}
        self.mailboxes = mailboxes
        self.balances: dict[str, Decimal] = {}
        for mailbox in sorted(mailboxes.values(), key=lambda m: m.line):
            self.balances.setdefault(mailbox.account_id, mailbox.balance)
        self.history = MemoryHistory()

    def run(self, start: date, end: date) -> Iterator[DayPlan]:
        day = start
        while day <= end:
            plan = self._day(day)
            if self.only:
                plan.decisions = [d for d in plan.decisions if d.mailbox_id in self.only]
            yield plan
            day += timedelta(days=1)

    def _day(self, day: date) -> DayPlan:
        window = self.evaluator.window(day)
        current = [
            replace(m, balance=self.balances[m.account_id])
            for m in self.mailboxes.values()
            if window.may_match(m)
        ]
        disputed = self.snapshot.conflicting_accounts
        plan = self.evaluator.plan(current, window, self.history, disputed)
        self.history.record(plan.decisions)
        for decision in plan.actions:
            mailbox = self.mailboxes.get(decision.mailbox_id)
            if mailbox is None:
                continue
            if decision.kind is Kind.DEDUCT and decision.amount is not None:
                self.balances[mailbox.account_id] -= decision.amount
                self.mailboxes[mailbox.mailbox_id] = _renewed(mailbox, decision)
            elif decision.kind is Kind.DELETE:
                del self.mailboxes[mailbox.mailbox_id]
        return plan


def _renewed(mailbox: Mailbox, deduction: Decision) -> Mailbox:
    """The mailbox in its next cycle, keeping the anchor day the renewal was made on."""
    assert deduction.next_expiry is not None  # noqa: S101 - the evaluator sets it on every decision
    return replace(mailbox, expires_on=deduction.next_expiry, anchor_day=deduction.anchor_day)
