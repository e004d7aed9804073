"""What simulated days add up to: actions by rule, and per day messages by channel, charges and
revenue by currency, renewals that lapse, deletions and the mailboxes in grace.

`forecast` shows a tally; `diff` sets the tallies of two policies side by side. Tallies of groups
of accounts are added up, so a range is counted without holding its decisions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from renewd.core.model import Decision, Kind, Mailbox
from renewd.plan.evaluate import DayPlan
from renewd.plan.world import World

Key = tuple[int, str]  # a day (its ordinal) and a channel or a currency


def action_label(decision: Decision) -> str:
    """`notify:email`, `deduct`, `delete`: how a kind of action is counted and shown."""
    key = (decision.kind, decision.channel)
    label = _LABELS.get(key)
    if label is None:
        label = _LABELS[key] = f"{key[0].value}:{key[1]}" if key[1] else key[0].value
    return label


_LABELS: dict[tuple[Kind, str], str] = {}
NOTIFY, DEDUCT = Kind.NOTIFY, Kind.DEDUCT  # plain names: see plan.evaluate


@dataclass
class Tally:
    """Counts of one policy over simulated days (superseded steps are not actions)."""

    actions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule, action label)
    messages: Counter[Key] = field(default_factory=Counter)  # (day, channel)
    charges: Counter[Key] = field(default_factory=Counter)  # (day, currency)
    revenue: defaultdict[Key, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    # auto-renewing paid mailboxes that reach their expiry day unpaid, and the fees they owed
    lapses: Counter[Key] = field(default_factory=Counter)
    lapsed: defaultdict[Key, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    deletions: Counter[int] = field(default_factory=Counter)  # by day
    grace: Counter[int] = field(default_factory=Counter)  # paid mailboxes in grace at day's end

    def count(self, plan: DayPlan) -> None:
        for decision in plan.decisions:
            if not decision.superseded_by:
                self.take(decision)

    def take(self, decision: Decision) -> None:
        """One action taken."""
        day = decision.date.toordinal()
        self.actions[decision.rule, action_label(decision)] += 1
        if decision.kind is NOTIFY:
            self.messages[day, decision.channel] += 1
        elif decision.kind is DEDUCT:
            self.charges[day, decision.currency] += 1
            self.revenue[day, decision.currency] += decision.amount or 0
        else:
            self.deletions[day] += 1

    def lapse(self, day: date, mailbox: Mailbox) -> None:
        """A renewal on auto-renew that did not happen by the expiry day."""
        self.lapses[day.toordinal(), mailbox.currency] += 1
        self.lapsed[day.toordinal(), mailbox.currency] += mailbox.renewal_fee

    def close_day(self, day: date, world: World, grace_days: int | None) -> None:
        """The day's end, once its actions are applied: renewals that lapsed on it, and (with
        a deletion `grace_days` after expiry) the paid mailboxes expired and not yet deleted."""
        for mailbox in lapsing(world, day):
            self.lapse(day, mailbox)
        if grace_days is not None:
            since = day - timedelta(days=grace_days - 1)
            count = sum(world.paid_on[since + timedelta(days=n)] for n in range(grace_days))
            if count:
                self.grace[day.toordinal()] += count

    def add(self, other: Tally) -> None:
        self.actions.update(other.actions)
        self.messages.update(other.messages)
        self.charges.update(other.charges)
        self.lapses.update(other.lapses)
        self.deletions.update(other.deletions)
        self.grace.update(other.grace)
        for money, more in ((self.revenue, other.revenue), (self.lapsed, other.lapsed)):
            for key, amount in more.items():
                money[key] += amount


def lapsing(world: World, day: date) -> list[Mailbox]:
    """Paid mailboxes on auto-renew still expiring on `day` once its actions are applied."""
    return [m for m in world.expiring(day) if m.auto_renew and m.edition in world.paid]


def ended(plans: Iterable[DayPlan], world: World, end: Callable[[date], None]) -> Iterator[DayPlan]:
    """The plans of `play` over `world`, passed through; `end(day)` is called once each day's
    actions are applied (when the next plan is asked for, or the play ends)."""
    day: date | None = None
    for plan in plans:
        if day is not None:
            end(day)
        yield plan
        day = plan.day
    if day is not None:
        end(day)


def tallied(
    plans: Iterable[DayPlan], world: World, tally: Tally, grace_days: int | None = None
) -> Iterator[DayPlan]:
    """The plans, passed through and counted into `tally`, each day's end measured."""
    for plan in ended(plans, world, lambda day: tally.close_day(day, world, grace_days)):
        tally.count(plan)
        yield plan


def total(tallies: Iterable[Tally]) -> Tally:
    result = Tally()
    for tally in tallies:
        result.add(tally)
    return result
