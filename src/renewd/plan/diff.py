"""Two policies over the same snapshot and days (`renewd diff`): what changes for whom.

The snapshot is read once, for the mailboxes either policy can reach. Each group of whole
accounts is played through every day under each policy (accounts are independent, so a group's
two runs can be compared on their own); what each policy does is counted (`Tally`), and every
mailbox whose actions differ becomes a `Change`, kept on disk in order of the first day they
differ. Memory stays flat in the snapshot's size and in the number of mailboxes affected.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

from renewd.config.model import Config
from renewd.core.meter import Meter
from renewd.core.model import Anchor, Decision, Kind, Mailbox
from renewd.plan.evaluate import Evaluator, Window
from renewd.plan.simulate import Simulation, close_spills, day_range
from renewd.plan.tally import Tally, ended, lapsing
from renewd.plan.world import World, play
from renewd.policy.model import Policy
from renewd.snapshot.reader import Snapshot
from renewd.snapshot.spill import Place, Spill

CHUNK = 32  # changes written to disk, and read back, at a time


class Act(NamedTuple):
    """One action as a diff compares it (superseded steps are not actions)."""

    day: date
    rule: str
    step: int
    anchor: str
    kind: str
    channel: str
    template: str
    amount: str
    currency: str

    @classmethod
    def of(cls, d: Decision) -> Act:
        amount = "" if d.amount is None else str(d.amount)
        # the enums are str: their values compare and print as themselves
        return cls(
            d.date, d.rule, d.step, d.anchor, d.kind, d.channel, d.template, amount, d.currency
        )


@dataclass(frozen=True)
class Change:
    """A mailbox the two policies treat differently: the first day they differ and what each
    does on it, every action only one of them takes, and its deletion day under each."""

    first_day: date
    mailbox_id: str
    account_id: str
    old: tuple[Act, ...]
    new: tuple[Act, ...]
    only_old: tuple[Act, ...]
    only_new: tuple[Act, ...]
    old_deletion: date | None
    new_deletion: date | None

    @property
    def deletion(self) -> str:
        """`moved`, `added`, `gone`, or "" when the deletion (or its absence) is unchanged."""
        old, new = self.old_deletion, self.new_deletion
        if old == new:
            return ""
        return "added" if old is None else "gone" if new is None else "moved"


@dataclass
class _Group:
    """One group's share, small enough to cross the pipe from the other process: its tallies
    and changes wait on disk, and are added up one group at a time."""

    tallies: Place
    simulated: int
    affected: int
    changes: list[Place]


@dataclass
class PolicyDiff:
    start: date
    end: date
    old: Tally
    new: Tally
    simulated: int  # mailboxes some rule of either policy can reach in the range
    affected: int  # of those, the ones whose actions differ
    snapshot: Snapshot
    _stored: list[tuple[Spill, list[Place]]]

    def changes(self) -> Iterator[Change]:
        """Every change, by first day that differs and mailbox, read back from disk."""
        streams = [_read(spill, places) for spill, places in self._stored]
        return heapq.merge(*streams, key=lambda c: (c.first_day, c.mailbox_id))

    def close(self) -> None:
        close_spills(self._stored)
        self._stored = []


def compare(
    config: Config,
    old: Policy,
    new: Policy,
    snapshot_path: Path,
    start: date,
    end: date,
    meter: Meter | None = None,
) -> PolicyDiff:
    """Simulate both policies from the same snapshot over `start`..`end` and compare them.

    Each group is played under the old policy first, noting the accounts a rule that is not the
    same in both could reach (`touching`); only those are played again under the new one. An
    account no such rule reaches on any day gets exactly the same actions under both: its days
    are the same until a differing rule is due for one of its mailboxes, and none ever is.
    """
    simulation = Simulation(config, old, snapshot_path, meter=meter, others=[new], expired_within=0)
    days = day_range(start, end)
    before, after = (
        _Play(simulation, policy, evaluator, [evaluator.window(day) for day in days])
        for policy, evaluator in zip(simulation.policies, simulation.evaluators, strict=True)
    )
    reach = touching(old, new, *simulation.evaluators)

    def work(group: list[Mailbox], spill: Spill) -> _Group:
        old_side = before(group, reach)
        touched = old_side.touched
        again = [m for m in group if touched is None or m.account_id in touched]
        changes, tallies = _settle(
            group, old_side, after(again, None), {m.mailbox_id for m in again}
        )
        places = [spill.put(changes[n : n + CHUNK]) for n in range(0, len(changes), CHUNK)]
        return _Group(spill.put(tallies), len(group), len(changes), places)

    done = simulation.each_group(start, end, work)
    old_total, new_total = Tally(), Tally()
    for spill, group in done:
        tally_old, tally_new = spill.get(group.tallies)
        old_total.add(tally_old)
        new_total.add(tally_new)
    return PolicyDiff(
        start,
        end,
        old_total,
        new_total,
        sum(g.simulated for _, g in done),
        sum(g.affected for _, g in done),
        simulation.snapshot,
        [(spill, g.changes) for spill, g in done],
    )


Reach = dict[Anchor, frozenset[int]]


def touching(old: Policy, new: Policy, old_ev: Evaluator, new_ev: Evaluator) -> Reach | None:
    """The offsets from each anchor date on which the two policies can treat a mailbox
    differently: the steps of every rule that is not the same in both (either version), and,
    when such a rule moves or reads money, the days the purse looks ahead. None: on any day
    (the editions differ)."""
    if (old.paid_editions, old.free_editions) != (new.paid_editions, new.free_editions):
        return None
    before = {rule.id: replace(rule, source="", line=0) for rule in old.rules}
    after = {rule.id: replace(rule, source="", line=0) for rule in new.rules}
    differing = [r for i, r in before.items() if after.get(i) != r]
    differing += [r for i, r in after.items() if before.get(i) != r]
    offsets: dict[Anchor, set[int]] = {anchor: set() for anchor in Anchor}
    for rule in differing:
        offsets[rule.anchor] |= rule.steps
    if any(rule.money for rule in differing):
        ahead = max(old_ev.look_ahead, new_ev.look_ahead)
        offsets[Anchor.EXPIRY] |= set(range(-ahead, 1))
    return {anchor: frozenset(steps) for anchor, steps in offsets.items()}


@dataclass
class _Side:
    """What one policy does to a group: the actions taken per mailbox, the days its renewals
    lapsed on, and (when asked) the accounts a `Reach` touched on some day."""

    taken: dict[str, list[Decision]]
    lapsed: dict[str, list[date]]
    touched: set[str] | None

    def of(self, mailbox_id: str) -> tuple[list[Decision], list[date]]:
        return self.taken.get(mailbox_id, []), self.lapsed.get(mailbox_id, [])


@dataclass
class _Play:
    simulation: Simulation
    policy: Policy
    evaluator: Evaluator
    windows: list[Window]

    def __call__(self, group: list[Mailbox], reach: Reach | None) -> _Side:
        taken: defaultdict[str, list[Decision]] = defaultdict(list)
        lapsed: defaultdict[str, list[date]] = defaultdict(list)
        touched: set[str] = set()
        world = self.simulation.world(group, self.policy)

        def end(day: date) -> None:
            for mailbox in lapsing(world, day):
                lapsed[mailbox.mailbox_id].append(day)

        for plan in ended(play(self.evaluator, world, self.windows), world, end):
            if reach is not None:  # the world as the day finds it, before its actions
                touched |= _touched(world, plan.day, reach)
            for decision in plan.decisions:
                if not decision.superseded_by:
                    taken[decision.mailbox_id].append(decision)
        return _Side(taken, lapsed, touched if reach is not None else None)


def _settle(
    group: list[Mailbox], old: _Side, new: _Side, replayed: set[str]
) -> tuple[list[Change], tuple[Tally, Tally]]:
    """The group's changes, in order, and each policy's tally; a mailbox not played again under
    the new policy does under it exactly what it does under the old one (counted once, for
    both), and one whose decisions are equal, in the same order, takes the same actions."""
    changes: list[Change] = []
    tallies = (Tally(), Tally())
    same = Tally()
    for mailbox in group:
        before = old.of(mailbox.mailbox_id)
        if mailbox.mailbox_id not in replayed:
            _count(same, mailbox, *before)
            continue
        after = new.of(mailbox.mailbox_id)
        if after[0] != before[0]:
            old_acts, new_acts = (sorted(Act.of(d) for d in side[0]) for side in (before, after))
            if old_acts != new_acts:
                changes.append(_change(mailbox, old_acts, new_acts))
        for tally, side in zip(tallies, (before, after), strict=True):
            _count(tally, mailbox, *side)
    for tally in tallies:
        tally.add(same)
    changes.sort(key=lambda c: (c.first_day, c.mailbox_id))
    return changes, tallies


def _count(tally: Tally, mailbox: Mailbox, taken: list[Decision], lapsed: list[date]) -> None:
    for decision in taken:
        tally.take(decision)
    for day in lapsed:
        tally.lapse(day, mailbox)


def _touched(world: World, day: date, reach: Reach) -> set[str]:
    found: set[str] = set()
    for anchor, offsets in reach.items():
        on = world.on[anchor]
        for offset in offsets:
            ids = on.get(day - timedelta(days=offset))
            if ids:
                found.update(world.mailboxes[i].account_id for i in ids)
    return found


def _change(mailbox: Mailbox, old: list[Act], new: list[Act]) -> Change:
    before, after = Counter(old), Counter(new)
    only_old = tuple(sorted((before - after).elements()))
    only_new = tuple(sorted((after - before).elements()))
    first = min(act.day for act in only_old + only_new)
    return Change(
        first,
        mailbox.mailbox_id,
        mailbox.account_id,
        tuple(a for a in old if a.day == first),
        tuple(a for a in new if a.day == first),
        only_old,
        only_new,
        _deletion(old),
        _deletion(new),
    )


def _deletion(acts: list[Act]) -> date | None:
    return next((a.day for a in acts if a.kind == Kind.DELETE), None)


def _read(spill: Spill, places: list[Place]) -> Iterator[Change]:
    for place in places:
        yield from spill.get(place)
