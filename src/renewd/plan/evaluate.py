"""The pure core: mailboxes + policy + day + history -> the day's decisions.

Nothing here reads files, clocks or databases; dry-run, simulate and run all call `Evaluator.plan`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import partial

from renewd.core.facts import derive
from renewd.core.history import History
from renewd.core.model import Anchor, Decision, Kind, Mailbox, StepKey
from renewd.policy.engine import Engine
from renewd.policy.model import Policy, Rule


@dataclass
class DayPlan:
    """One day's decisions by mailbox: those to take, and those a more specific rule superseded.

    `decisions` may be read from disk as it is iterated (a big day's plan): to go through it
    once, iterate it; `actions` and `superseded` build lists.
    """

    day: date
    decisions: Iterable[Decision] = field(default_factory=list)

    @property
    def actions(self) -> list[Decision]:
        return [d for d in self.decisions if not d.superseded_by]

    @property
    def superseded(self) -> list[Decision]:
        return [d for d in self.decisions if d.superseded_by]


@dataclass(frozen=True)
class Window:
    """The days being evaluated: `today` and, after missed days, the days since the last run.

    `due` holds, per anchor, every anchor date that puts some rule's step inside the window:
    a mailbox whose dates are in neither set cannot match any rule and is skipped.
    """

    today: date
    days: tuple[date, ...]
    due: dict[Anchor, frozenset[date]]
    exhaustive: bool = False

    def may_match(self, mailbox: Mailbox) -> bool:
        if self.exhaustive or mailbox.expires_on in self.due[Anchor.EXPIRY]:
            return True
        domain = mailbox.domain_expires_on
        return domain is not None and domain in self.due[Anchor.DOMAIN]


class Evaluator:
    """A policy compiled into durable_rules, ready to plan any number of days."""

    def __init__(self, policy: Policy, exhaustive: bool = False) -> None:
        """`exhaustive` turns the skip off (every mailbox to the engine on every day of the window):
        slow, and only there to prove that the skip never changes a decision.
        """
        self.policy = policy
        self.exhaustive = exhaustive
        self.engine = Engine(policy)
        self._rules = {rule.id: rule for rule in policy.rules}
        self._steps = {anchor: policy.steps(anchor) for anchor in Anchor}
        # The day before each deletion step, too: the deletion guard wants renewd to have seen the
        # mailbox expired on an earlier run, so it must be read on that day.
        eve = {step - 1 for rule in policy.rules if rule.delete for step in rule.steps}
        self._watched = {**self._steps, Anchor.EXPIRY: self._steps[Anchor.EXPIRY] | eve}

    def window(self, today: date, since: date | None = None) -> Window:
        """Days after `since` up to `today` (just `today` when `since` is None or not earlier)."""
        first = today if since is None or since >= today else since + timedelta(days=1)
        days = tuple(first + timedelta(days=n) for n in range((today - first).days + 1))
        due = {
            anchor: frozenset(day - timedelta(days=step) for day in days for step in steps)
            for anchor, steps in self._watched.items()
        }
        return Window(today, days, due, self.exhaustive)

    def plan(self, mailboxes: Iterable[Mailbox], window: Window, history: History) -> DayPlan:
        """Decide the day for `mailboxes` (those that pass `window.may_match`; others are ignored).

        Mailboxes of one account are taken in order of expiry, then id, and each deduction
        reserves its fee, so one balance never pays for two renewals it cannot cover.
        """
        accounts: defaultdict[str, list[Mailbox]] = defaultdict(list)
        for mailbox in mailboxes:
            if window.may_match(mailbox):
                accounts[mailbox.account_id].append(mailbox)
        per_mailbox: list[tuple[tuple[date, str], list[Decision]]] = []
        for account_id, members in accounts.items():
            reserved = history.unseen_debits(account_id)
            for mailbox in sorted(members, key=_order):
                decisions = self._decide(mailbox, window, mailbox.balance - reserved, history)
                if any(d.kind is Kind.DEDUCT and not d.superseded_by for d in decisions):
                    reserved += mailbox.renewal_fee
                per_mailbox.append((_order(mailbox), decisions))
        per_mailbox.sort(key=lambda item: item[0])
        return DayPlan(window.today, [d for _, decisions in per_mailbox for d in decisions])

    def declined(self, mailbox: Mailbox, window: Window, history: History) -> list[Decision]:
        """The decisions if the billing backend declines this mailbox's deduction.

        Exactly as if the balance had been short: the policy's failure path, worked out now so
        that it can stand by in the ledger and go out the moment a decline is recorded.
        """
        return self._decide(mailbox, window, Decimal(0), history, short=True)

    def _decide(
        self,
        mailbox: Mailbox,
        window: Window,
        available: Decimal,
        history: History,
        short: bool = False,
    ) -> list[Decision]:
        due = self._due_steps(mailbox, window, available, history, short)
        winners: dict[str, Rule] = {}
        for rule, _ in due:
            best = winners.get(rule.group)
            if rule.group and (best is None or rule.priority > best.priority):
                winners[rule.group] = rule
        decisions: list[Decision] = []
        for rule, key in sorted(due, key=lambda item: (-item[0].priority, item[0].id)):
            winner = winners.get(rule.group, rule)
            superseded_by = "" if winner is rule else winner.id
            decisions.extend(self._actions(rule, key, mailbox, window.today, superseded_by))
        return decisions

    def _due_steps(
        self, mailbox: Mailbox, window: Window, available: Decimal, history: History, short: bool
    ) -> list[tuple[Rule, StepKey]]:
        """The latest step per rule that came due in the window and was not done before.

        Evaluating each missed day and keeping only the latest step per rule is the catch-up:
        a late run still does what came due, but never sends a backlog of stale steps.
        """
        is_paid = mailbox.edition in self.policy.paid_editions
        cycle = history.cycle(mailbox.mailbox_id, mailbox.expires_on)
        latest: dict[str, tuple[Rule, date]] = {}
        for day in window.days:
            if not self._possible_on(mailbox, day):
                continue
            facts = derive(
                mailbox, day, is_paid=is_paid, available=available, cycle=cycle, short=short
            )
            for rule_id in self.engine.matches(facts):
                latest[rule_id] = (self._rules[rule_id], day)
        due = []
        for rule, day in latest.values():
            anchor_date = mailbox.anchor_date(rule.anchor)
            assert anchor_date is not None  # noqa: S101 - the engine only matches present dates
            key = StepKey(mailbox.mailbox_id, rule.id, anchor_date, (day - anchor_date).days)
            if not history.done(key):
                due.append((rule, key))
        return due

    def _possible_on(self, mailbox: Mailbox, day: date) -> bool:
        if self.exhaustive:
            return True
        for anchor, steps in self._steps.items():
            anchor_date = mailbox.anchor_date(anchor)
            if anchor_date is not None and (day - anchor_date).days in steps:
                return True
        return False

    @staticmethod
    def _actions(
        rule: Rule, key: StepKey, mailbox: Mailbox, today: date, superseded_by: str
    ) -> list[Decision]:
        """A rule's actions in the order they happen: charge, tell, then delete."""
        make = partial(
            Decision,
            date=today,
            mailbox_id=mailbox.mailbox_id,
            account_id=mailbox.account_id,
            rule=rule.id,
            cycle=key.cycle,
            step=key.step,
            anchor=rule.anchor,
            superseded_by=superseded_by,
        )
        actions = []
        if rule.deduct:
            actions.append(
                make(kind=Kind.DEDUCT, amount=mailbox.renewal_fee, currency=mailbox.currency)
            )
        for channel in rule.notify:
            if channel == "sms" and not mailbox.phone:
                continue
            actions.append(make(kind=Kind.NOTIFY, channel=channel, template=rule.template))
        if rule.delete:
            actions.append(make(kind=Kind.DELETE))
        return actions


def _order(mailbox: Mailbox) -> tuple[date, str]:
    return mailbox.expires_on, mailbox.mailbox_id
