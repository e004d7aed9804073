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
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import NamedTuple

from renewd.config.model import Config
from renewd.core.model import Decision, Kind, Mailbox
from renewd.plan.evaluate import Evaluator, Window
from renewd.plan.simulate import Simulation, close_spills, day_range
from renewd.plan.tally import Tally, tallied
from renewd.plan.world import play
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
    config: Config, old: Policy, new: Policy, snapshot_path: Path, start: date, end: date
) -> PolicyDiff:
    """Simulate both policies from the same snapshot over `start`..`end` and compare them."""
    simulation = Simulation(config, old, snapshot_path, others=[new], expired_within=0)
    days = day_range(start, end)
    plays = [
        (policy, evaluator, [evaluator.window(day) for day in days])
        for policy, evaluator in zip(simulation.policies, simulation.evaluators, strict=True)
    ]

    def work(group: list[Mailbox], spill: Spill) -> _Group:
        (before, tally_old), (after, tally_new) = (
            _acts(simulation, policy, evaluator, windows, group)
            for policy, evaluator, windows in plays
        )
        changes = [
            _change(mailbox, before.get(mailbox.mailbox_id, []), after.get(mailbox.mailbox_id, []))
            for mailbox in group
            if before.get(mailbox.mailbox_id, []) != after.get(mailbox.mailbox_id, [])
        ]
        changes.sort(key=lambda c: (c.first_day, c.mailbox_id))
        places = [spill.put(changes[n : n + CHUNK]) for n in range(0, len(changes), CHUNK)]
        tallies = spill.put((tally_old, tally_new))
        return _Group(tallies, len(group), len(changes), places)

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


def _acts(
    simulation: Simulation,
    policy: Policy,
    evaluator: Evaluator,
    windows: list[Window],
    group: list[Mailbox],
) -> tuple[dict[str, list[Act]], Tally]:
    """What one policy does to each mailbox of the group over the range, sorted, and its tally."""
    acts: defaultdict[str, list[Act]] = defaultdict(list)
    tally = Tally()
    world = simulation.world(group, policy)
    for plan in tallied(play(evaluator, world, windows), world, tally):
        for decision in plan.decisions:
            if not decision.superseded_by:
                acts[decision.mailbox_id].append(Act.of(decision))
    for listed in acts.values():
        listed.sort()
    return acts, tally


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
