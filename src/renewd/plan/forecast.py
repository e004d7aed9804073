"""The coming days as totals (`renewd forecast`): the policy simulated over the range and counted
per day, group by group, so a snapshot of millions is counted in flat memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from renewd.config.model import Config
from renewd.core.meter import Meter
from renewd.core.model import Mailbox
from renewd.plan.simulate import Simulation, close_spills, day_range
from renewd.plan.tally import Key, Tally, tallied, total
from renewd.plan.world import play
from renewd.policy.model import Policy
from renewd.snapshot.reader import Snapshot
from renewd.snapshot.spill import Place, Spill

V = TypeVar("V")


@dataclass
class Forecast:
    """Days `start`..`end` of one policy. `grace_days`: days from expiry to deletion (None: the
    policy deletes nothing, and nobody is counted in grace)."""

    start: date
    end: date
    tally: Tally
    grace_days: int | None
    snapshot: Snapshot

    @property
    def days(self) -> list[date]:
        return day_range(self.start, self.end)

    @property
    def channels(self) -> list[str]:
        return sorted({channel for _, channel in self.tally.messages})

    @property
    def currencies(self) -> list[str]:
        tally = self.tally
        return sorted({currency for _, currency in [*tally.charges, *tally.lapses]})

    def daily(self, counts: Mapping[Key, V], key: str, zero: V) -> list[V]:
        """One value per day of the range, for one channel or currency of `counts`."""
        return [counts.get((day.toordinal(), key), zero) for day in self.days]

    def per_day(self, counts: Mapping[int, int]) -> list[int]:
        return [counts.get(day.toordinal(), 0) for day in self.days]


def forecast(
    config: Config,
    policy: Policy,
    snapshot_path: Path,
    start: date,
    end: date,
    meter: Meter | None = None,
) -> Forecast:
    """Simulate `start`..`end` exactly as `simulate` does, and count it. Besides the mailboxes
    some rule can reach, those expiring in the range (renewals that may lapse) and those in
    grace at its start are read."""
    grace = policy.deletion_after if (policy.deletion_after or 0) > 0 else None
    within = grace - 1 if grace else 0
    simulation = Simulation(config, policy, snapshot_path, meter=meter, expired_within=within)
    windows = [simulation.evaluator.window(day) for day in day_range(start, end)]

    def work(group: list[Mailbox], spill: Spill) -> Place:
        """One group's tally, on disk: the groups' are added up one at a time."""
        tally = Tally()
        world = simulation.world(group, policy)
        for _plan in tallied(play(simulation.evaluator, world, windows), world, tally, grace):
            pass
        return spill.put(tally)

    done = simulation.each_group(start, end, work)
    try:
        tally = total(spill.get(place) for spill, place in done)
    finally:
        close_spills(done)
    return Forecast(start, end, tally, grace, simulation.snapshot)
