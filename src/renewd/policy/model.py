"""A validated policy: settings plus rules, each rule knowing the days it can act on."""

from __future__ import annotations

from dataclasses import dataclass, field

from renewd.core.model import Anchor
from renewd.policy.conditions import Cond, referenced

CHANNELS = ("email", "sms")
BALANCE_FACTS = frozenset({"balance", "balance_covers_fee"})


@dataclass
class Draft:
    """A rule as written, before its days are worked out."""

    id: str
    when: Cond
    source: str
    line: int
    notify: tuple[str, ...] = ()
    template: str = ""
    deduct: bool = False
    delete: bool = False
    group: str = ""
    priority: int = 0
    retry: bool = False


@dataclass(frozen=True)
class Rule:
    """One rule in the generic vocabulary; lifecycle sections compile to these too.

    `steps` are the offsets from the anchor date on which the rule can hold: a rule acts at most
    once per (mailbox, cycle, step). Within a `group`, only the highest `priority` acts on a day.
    `retry`: the rule charges again for a cycle whose auto-renewal did not happen (the opt-in
    `auto_renew_retry` section); unlike a first attempt, a missed retry is still made after expiry.
    """

    id: str
    when: Cond
    anchor: Anchor
    steps: frozenset[int]
    notify: tuple[str, ...] = ()
    template: str = ""
    deduct: bool = False
    delete: bool = False
    group: str = ""
    priority: int = 0
    retry: bool = False
    source: str = ""
    line: int = 0

    @property
    def money(self) -> bool:
        """Whether the rule moves or speaks of the account's money: it deducts, or its condition
        reads the balance. Such rules stand down for an account whose rows disagree on it."""
        return self.deduct or bool(referenced(self.when) & BALANCE_FACTS)


@dataclass(frozen=True)
class Policy:
    timezone: str
    paid_editions: frozenset[str]
    free_editions: frozenset[str]
    rules: tuple[Rule, ...]
    digest: str = ""
    sources: tuple[str, ...] = field(default=())

    @property
    def editions(self) -> frozenset[str]:
        return self.paid_editions | self.free_editions

    @property
    def deletion_after(self) -> int | None:
        """Days after expiry on which a mailbox is deleted (the earliest deleting step), if any."""
        days = [min(r.steps) for r in self.rules if r.delete and r.anchor is Anchor.EXPIRY]
        return min(days) if days else None

    @property
    def auto_renew_days(self) -> int | None:
        """Days before expiry on which the fee is first deducted, if a rule deducts before it."""
        days = [
            -min(r.steps)
            for r in self.rules
            if r.deduct and not r.retry and r.anchor is Anchor.EXPIRY
        ]
        return max(days) if days and max(days) > 0 else None

    @property
    def retry_steps(self) -> tuple[int, ...]:
        """The days (offsets from expiry) on which a failed auto-renewal is tried again."""
        steps = {s for r in self.rules if r.retry and r.anchor is Anchor.EXPIRY for s in r.steps}
        return tuple(sorted(steps))

    def steps(self, anchor: Anchor) -> frozenset[int]:
        """Every offset from `anchor` on which some rule can act: the evaluator's pre-filter."""
        result = frozenset[int]()
        for rule in self.rules:
            if rule.anchor is anchor:
                result |= rule.steps
        return result
