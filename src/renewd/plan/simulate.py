"""The test clock: run the policy on every day of a range against an in-memory copy of the world."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from renewd.config.model import Config
from renewd.core.dates import add_months
from renewd.core.errors import RenewdError
from renewd.core.history import MemoryHistory
from renewd.core.meter import Meter
from renewd.core.model import Kind, Mailbox
from renewd.plan.evaluate import DayPlan, Evaluator
from renewd.policy.model import Policy
from renewd.snapshot.reader import Snapshot


class Simulation:
    """Days `start`..`end` in order; each day's plan is applied before the next day is planned.

    A deduction lowers the account's balance and extends `expires_on` by `renewal_months` (a new
    cycle); a deletion removes the mailbox. Nothing is written outside this object.
    """

    def __init__(
        self,
        config: Config,
        policy: Policy,
        snapshot_path: Path,
        only: tuple[str, ...] = (),
        meter: Meter | None = None,
    ) -> None:
        self.evaluator = Evaluator(policy)
        self.meter = meter or Meter()
        self.snapshot = Snapshot(snapshot_path, policy.editions, config.default_locale)
        self.meter.begin("reading the snapshot", "rows", done=lambda: self.snapshot.rows_read)
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
        self.meter.begin("simulating", "days", (end - start).days + 1)
        while day <= end:
            plan = self._day(day)
            if self.only:
                plan.decisions = [d for d in plan.decisions if d.mailbox_id in self.only]
            self.meter.advance()
            yield plan
            day += timedelta(days=1)

    def _day(self, day: date) -> DayPlan:
        window = self.evaluator.window(day)
        current = [
            replace(m, balance=self.balances[m.account_id])
            for m in self.mailboxes.values()
            if window.may_match(m)
        ]
        plan = self.evaluator.plan(current, window, self.history)
        self.history.record(plan.decisions)
        for decision in plan.actions:
            mailbox = self.mailboxes.get(decision.mailbox_id)
            if mailbox is None:
                continue
            if decision.kind is Kind.DEDUCT and decision.amount is not None:
                self.balances[mailbox.account_id] -= decision.amount
                self.mailboxes[mailbox.mailbox_id] = _renewed(mailbox)
            elif decision.kind is Kind.DELETE:
                del self.mailboxes[mailbox.mailbox_id]
        return plan


def _renewed(mailbox: Mailbox) -> Mailbox:
    return replace(mailbox, expires_on=add_months(mailbox.expires_on, mailbox.renewal_months))
