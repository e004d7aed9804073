"""The test clock: the policy on every day of a range, each day's actions applied before the next.

Accounts are independent of each other, so the range is simulated a group of whole accounts at
a time (about `PART_SIZE` mailboxes, as a day's plan is made): a group goes through every day,
its decisions wait on disk a day at a time in the plan's order, and each day's are merged from
every group's a few at a time (`merge`). Only the mailboxes some rule can reach somewhere in the
range are read, and memory stays flat in N, even for a day's decisions.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

from renewd.config.model import Config
from renewd.core.errors import RenewdError
from renewd.core.meter import Meter
from renewd.core.model import Anchor, Decision, Mailbox
from renewd.plan.day import Candidates, wanted
from renewd.plan.evaluate import DayPlan, Evaluator, Window
from renewd.plan.fork import Work, alternate
from renewd.plan.merge import Ordered, Run, merged, put_in_order, values
from renewd.plan.world import TopUps, World, play
from renewd.policy.model import Policy
from renewd.snapshot.reader import Snapshot
from renewd.snapshot.spill import Spill

E = TypeVar("E")
R = TypeVar("R")


class Simulation:
    """Days `start`..`end` in order; each day's plan is applied before the next day is planned.

    A deduction lowers the account's balance and moves `expires_on` where the cycle model says
    (`renewal_months` later, on the cycle's anchor day): a new cycle. A deletion removes the
    mailbox. `top_ups` raise an account's balance at the start of their day. Nothing is written
    outside this object but its own temporary files.

    `others`: more policies played over the same scan (`diff`); the snapshot is read once, with
    the mailboxes any of them can reach. `expired_within`: also read every mailbox whose
    `expires_on` falls from that many days before `start` to `end` (`forecast` counts the
    renewals that lapse and the mailboxes in grace, which no rule need reach).
    """

    def __init__(
        self,
        config: Config,
        policy: Policy,
        snapshot_path: Path,
        only: tuple[str, ...] = (),
        meter: Meter | None = None,
        *,
        others: Sequence[Policy] = (),
        expired_within: int | None = None,
        top_ups: TopUps | None = None,
    ) -> None:
        self.policies = (policy, *others)
        self.evaluators = [Evaluator(p) for p in self.policies]
        self.evaluator = self.evaluators[0]
        self.meter = meter or Meter()
        editions = frozenset[str]().union(*(p.editions for p in self.policies))
        self.snapshot = Snapshot(snapshot_path, editions, config.default_locale)
        self.only = frozenset(only)
        self.expired_within = expired_within
        self.top_ups = top_ups or {}

    def run(self, start: date, end: date) -> Iterator[DayPlan]:
        """The plan of each day; the snapshot is read, and the range worked out in groups of
        accounts (two at a time on two CPUs), before the first one is ready."""
        for day, decisions in self.encoded(start, end, _as_is):
            yield DayPlan(day, list(decisions))

    def encoded(
        self, start: date, end: date, encode: Callable[[Decision], E | None]
    ) -> Iterator[tuple[date, Iterator[E]]]:
        """Each day's decisions as `encode` makes them (None: left out), in the plan's order; a
        day's are read from disk as they are iterated, so iterate each before the next day.

        The groups are worked out, and their decisions encoded, by two processes at once; each
        group's decisions wait on disk a day at a time, already in the plan's order, and each
        day's are merged here from the groups' runs. What crosses to disk and back is the
        encoded value, so a jsonl line costs one string's pickling, not a Decision's.
        """
        days = day_range(start, end)
        windows = [self.evaluator.window(day) for day in days]

        def work(group: list[Mailbox], spill: Spill) -> array[int]:
            return self._simulate(group, windows, spill, encode)

        done = self.each_group(start, end, work)
        self.meter.begin("writing the plan", "days", len(days))
        read = [0] * len(done)  # where each group's next day is, in its places
        try:
            for index, day in enumerate(days):
                runs: list[Run] = []
                for group, (spill, places) in enumerate(done):
                    at = read[group]
                    if at < len(places) and places[at] == index:
                        runs.append([(spill, (places[at + 1], places[at + 2]))])
                        read[group] = at + 3
                yield day, values(merged(runs))
                self.meter.advance()
        finally:
            close_spills(done)

    def each_group(
        self, start: date, end: date, work: Work[list[Mailbox], R]
    ) -> list[tuple[Spill, R]]:
        """`work(group, spill)` for each group of whole accounts that some rule can reach in the
        range (two at a time on two CPUs), with the spill its result was written to: the caller
        closes them (`close_spills`)."""
        candidates, accounts, near = self._scan(self._reach(start, end))
        self.meter.begin("simulating", "mailboxes", near)

        def groups() -> Iterator[Callable[[], list[Mailbox]]]:
            """Every group, in order, as a function that reads it (each process reads only the
            groups it works on); each counts as done as this process passes it (the other
            process works on its own groups at about the same pace)."""
            for size, load in candidates.parts(self.snapshot.duplicates):
                yield load
                self.meter.advance(size)

        def read_and_work(load: Callable[[], list[Mailbox]], spill: Spill) -> R:
            group = load()
            return work(
                [m for m in group if m.account_id in accounts] if self.only else group, spill
            )

        try:
            return alternate(groups, read_and_work, worth_it=candidates.spill is not None)
        finally:
            if candidates.spill is not None:
                candidates.spill.close()

    def world(self, group: list[Mailbox], policy: Policy) -> World:
        return World(group, self.snapshot.conflicting_accounts, policy.paid_editions)

    def _reach(self, start: date, end: date) -> Window:
        """The anchor dates some rule of some policy can reach on some day of the range."""
        reaches = [e.window(end, start - timedelta(days=1)) for e in self.evaluators]
        due = {a: frozenset[date]().union(*(r.due[a] for r in reaches)) for a in Anchor}
        if self.expired_within is not None:
            expired = day_range(start - timedelta(days=self.expired_within), end)
            due[Anchor.EXPIRY] |= frozenset(expired)
        return Window(end, reaches[0].days, due)

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

    def _simulate(
        self,
        group: list[Mailbox],
        windows: list[Window],
        spill: Spill,
        encode: Callable[[Decision], E | None],
    ) -> array[int]:
        """One group of accounts through every day; where each day's decisions went, in the
        plan's order (a mailbox's own in the order decided): the day's place in the range and
        the spill's place, three numbers a day (a million mailboxes make 30,000 such days, so
        they are kept as numbers, not as tuples)."""
        world = self.world(group, self.policies[0])
        mailboxes, only = world.mailboxes, self.only
        chunks = array("q")
        for index, plan in enumerate(play(self.evaluator, world, windows, self.top_ups)):
            ordered: list[Ordered[E]] = []
            for decision in plan.decisions:
                mailbox_id = decision.mailbox_id
                if only and mailbox_id not in only:
                    continue
                value = encode(decision)
                if value is not None:
                    expiry = mailboxes[mailbox_id].expires_on.toordinal()
                    ordered.append((expiry, mailbox_id, value))
            if ordered:
                put_in_order(ordered)
                chunks.extend((index, *spill.put(ordered)))
        return chunks


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def close_spills(done: list[tuple[Spill, R]]) -> None:
    for spill in {id(spill): spill for spill, _ in done}.values():
        spill.close()


def _as_is(decision: Decision) -> Decision:
    return decision
