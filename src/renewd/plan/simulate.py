"""The test clock: the policy on every day of a range, each day's actions applied before the next.

Accounts are independent of each other, so the range is simulated a group of whole accounts at
a time (about `PART_SIZE` mailboxes, as a day's plan is made): a group goes through every day,
its decisions wait on disk in the plan's order, and the groups are merged day by day. Only the
mailboxes some rule can reach somewhere in the range are read, and memory stays flat in N.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from renewd.config.model import Config
from renewd.core.errors import RenewdError
from renewd.core.history import MemoryHistory
from renewd.core.meter import Meter
from renewd.core.model import Anchor, Decision, Kind, Mailbox
from renewd.plan.day import Candidates, wanted
from renewd.plan.evaluate import DayPlan, Evaluator, Window
from renewd.plan.fork import alternate
from renewd.policy.model import Policy
from renewd.snapshot.reader import Snapshot
from renewd.snapshot.spill import Place, Spill

CHUNK = 32  # decisions of a group written to disk, and read back, at a time

# A decision with where it goes: its day, the mailbox's expiry that day, the mailbox, its place
# in the group (unique, so tuples compare without ever reaching the Decision).
Ordered = tuple[int, int, str, int, Decision]

# Money customers add, by day and account: "what if they top up 500 on 2027-02-01".
TopUps = Mapping[date, Mapping[str, Decimal]]


class Simulation:
    """Days `start`..`end` in order; each day's plan is applied before the next day is planned.

    A deduction lowers the account's balance and moves `expires_on` where the cycle model says
    (`renewal_months` later, on the cycle's anchor day): a new cycle. A deletion removes the
    mailbox. `top_ups` raise an account's balance at the start of their day. Nothing is written
    outside this object but its own temporary file.
    """

    def __init__(
        self,
        config: Config,
        policy: Policy,
        snapshot_path: Path,
        only: tuple[str, ...] = (),
        meter: Meter | None = None,
        top_ups: TopUps | None = None,
    ) -> None:
        self.evaluator = Evaluator(policy)
        self.meter = meter or Meter()
        self.snapshot = Snapshot(snapshot_path, policy.editions, config.default_locale)
        self.only = frozenset(only)
        self.top_ups = top_ups or {}

    def run(self, start: date, end: date) -> Iterator[DayPlan]:
        """The plan of each day; the snapshot is read, and the range worked out in groups of
        accounts (two at a time on two CPUs), before the first one is ready."""
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        windows = [self.evaluator.window(day) for day in days]
        reach = self.evaluator.window(end, start - timedelta(days=1))
        candidates, accounts, near = self._scan(reach)
        self.meter.begin("simulating", "mailboxes", near)

        def groups() -> Iterator[list[Mailbox]]:
            """Every group, in order; each counts as done as this process passes it (the other
            process works on its own groups at about the same pace)."""
            for group in candidates.groups(self.snapshot.duplicates):
                yield [m for m in group if m.account_id in accounts] if self.only else group
                self.meter.advance(len(group))

        def work(group: list[Mailbox], spill: Spill) -> list[Place]:
            return self._simulate(group, windows, spill)

        try:
            done = alternate(groups, work, worth_it=candidates.spill is not None)
        finally:
            if candidates.spill is not None:
                candidates.spill.close()
        self.meter.begin("writing the plan", "days", len(days))
        try:
            merged = heapq.merge(*(_read(spill, places) for spill, places in done))
            by_day = itertools.groupby(merged, key=lambda ordered: ordered[0])
            current = next(by_day, None)
            for day in days:
                decisions: list[Decision] = []
                if current is not None and current[0] == day.toordinal():
                    decisions = [ordered[4] for ordered in current[1]]
                    current = next(by_day, None)
                self.meter.advance()
                yield DayPlan(day, decisions)
        finally:
            for spill in {id(spill): spill for spill, _ in done}.values():
                spill.close()

    def _scan(self, reach: Window) -> tuple[Candidates, set[str], int]:
        """The mailboxes some rule can reach in the range, by account, and how many; with
        `only`, the accounts of those mailboxes (an unknown one is an error)."""
        self.meter.begin("reading the snapshot", "rows", done=lambda: self.snapshot.rows_read)
        candidates = Candidates()
        found: dict[str, str] = {}  # a mailbox asked for: its account
        near = 0
        for mailbox in self.snapshot.scan(wanted(reach, self.only)):
            if mailbox.mailbox_id in self.only:
                found[mailbox.mailbox_id] = mailbox.account_id
            if reach.may_match(mailbox):
                candidates.add(mailbox)
                near += 1
        unknown = sorted(self.only - found.keys() | (self.only & self.snapshot.duplicates))
        if unknown:
            if candidates.spill is not None:
                candidates.spill.close()
            raise RenewdError(f"mailbox not in the snapshot (or rejected): {', '.join(unknown)}")
        return candidates, set(found.values()), near

    def _simulate(self, group: list[Mailbox], windows: list[Window], spill: Spill) -> list[Place]:
        """One group of accounts through every day; where its decisions went, in order."""
        world = _World(group, self.snapshot.conflicting_accounts)
        history = MemoryHistory()
        chunks: list[Place] = []
        pending: list[Ordered] = []
        n = itertools.count()
        for window in windows:
            for account_id, amount in self.top_ups.get(window.today, {}).items():
                world.add(account_id, amount)
            plan = self.evaluator.plan(world.current(window), window, history, world.disputed)
            history.record(plan.decisions)
            day = window.today.toordinal()
            for decision in plan.decisions:
                if self.only and decision.mailbox_id not in self.only:
                    continue
                expiry = world.mailboxes[decision.mailbox_id].expires_on.toordinal()
                pending.append((day, expiry, decision.mailbox_id, next(n), decision))
            world.apply(plan.actions)
            while len(pending) >= CHUNK:
                chunks.append(spill.put(pending[:CHUNK]))
                del pending[:CHUNK]
        if pending:
            chunks.append(spill.put(pending))
        return chunks


class _World:
    """A group's mailboxes as the days change them, each carrying its account's balance of the
    day, and indexed by the dates that put them on a step, so a day touches only the mailboxes
    near one."""

    def __init__(self, group: list[Mailbox], disputed: set[str]) -> None:
        self.disputed = {m.account_id for m in group} & disputed
        first: dict[str, Decimal] = {}
        self.accounts: defaultdict[str, list[str]] = defaultdict(list)
        for mailbox in sorted(group, key=lambda m: m.line):
            first.setdefault(mailbox.account_id, mailbox.balance)
            self.accounts[mailbox.account_id].append(mailbox.mailbox_id)
        self.mailboxes: dict[str, Mailbox] = {}
        self.on: dict[Anchor, defaultdict[date, set[str]]] = {
            anchor: defaultdict(set) for anchor in Anchor
        }
        for mailbox in group:
            # one balance per account, the first row's; a disputed account keeps each row's own
            # (it gets no money action)
            if mailbox.account_id not in self.disputed:
                mailbox = replace(mailbox, balance=first[mailbox.account_id])
            self.mailboxes[mailbox.mailbox_id] = mailbox
            self._index(mailbox, add=True)

    def current(self, window: Window) -> list[Mailbox]:
        """The mailboxes the day's window can reach."""
        ids: set[str] = set()
        for anchor, dates in window.due.items():
            on = self.on[anchor]
            for day in dates:
                ids |= on.get(day, set())
        return [self.mailboxes[mailbox_id] for mailbox_id in sorted(ids)]

    def apply(self, actions: Iterable[Decision]) -> None:
        for decision in actions:
            mailbox = self.mailboxes.get(decision.mailbox_id)
            if mailbox is None:
                continue
            if decision.kind is Kind.DEDUCT and decision.amount is not None:
                self._index(mailbox, add=False)
                self.mailboxes[mailbox.mailbox_id] = _renewed(mailbox, decision)
                self._index(self.mailboxes[mailbox.mailbox_id], add=True)
                self.add(mailbox.account_id, -decision.amount)
            elif decision.kind is Kind.DELETE:
                self._index(mailbox, add=False)
                del self.mailboxes[mailbox.mailbox_id]

    def add(self, account_id: str, amount: Decimal) -> None:
        """Money into (or, negative, out of) the account: every row of it shows the balance."""
        for mailbox_id in self.accounts.get(account_id, ()):
            mailbox = self.mailboxes.get(mailbox_id)
            if mailbox is not None:
                self.mailboxes[mailbox_id] = replace(mailbox, balance=mailbox.balance + amount)

    def _index(self, mailbox: Mailbox, add: bool) -> None:
        for anchor in Anchor:
            day = mailbox.anchor_date(anchor)
            if day is not None:
                ids = self.on[anchor][day]
                if add:
                    ids.add(mailbox.mailbox_id)
                else:
                    ids.discard(mailbox.mailbox_id)


def _renewed(mailbox: Mailbox, deduction: Decision) -> Mailbox:
    """The mailbox in its next cycle, keeping the anchor day the renewal was made on."""
    assert deduction.next_expiry is not None  # noqa: S101 - the evaluator sets it on every decision
    return replace(mailbox, expires_on=deduction.next_expiry, anchor_day=deduction.anchor_day)


def _read(spill: Spill, chunks: list[Place]) -> Iterator[Ordered]:
    for chunk in chunks:
        yield from spill.get(chunk)
