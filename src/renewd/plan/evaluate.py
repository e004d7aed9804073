"""The pure core: mailboxes + policy + day + history -> the day's decisions.

Nothing here reads files, clocks or databases; dry-run, simulate and run all call `Evaluator.plan`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from renewd.core.cycles import Cycle, CycleState, cycle_of
from renewd.core.facts import derive
from renewd.core.history import History
from renewd.core.model import Anchor, Decision, Kind, Mailbox, StepKey
from renewd.core.money import Funds, Purse
from renewd.plan.actions import Actions, step_key
from renewd.policy.engine import Engine
from renewd.policy.model import Policy, Rule

# Enum members as plain names for the hot paths: in Python 3.11 each `Kind.DEDUCT` is a
# descriptor call, and a long simulation makes millions of them.
EXPIRY, DOMAIN = Anchor.EXPIRY, Anchor.DOMAIN
DEDUCT, NOTIFY, DELETE = Kind.DEDUCT, Kind.NOTIFY, Kind.DELETE
CYCLES = 1 << 16  # cycles kept (`Evaluator._cycle`); past that the memo starts afresh


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
        if self.exhaustive or mailbox.expires_on in self.due[EXPIRY]:
            return True
        domain = mailbox.domain_expires_on
        return domain is not None and domain in self.due[DOMAIN]


SPENDS, PROMISES = "spends", "promises"


class Turn(NamedTuple):
    """One mailbox's turn at its account's purse in a day's plan."""

    mailbox: Mailbox
    funds: Funds
    decisions: list[Decision]
    purse: str  # SPENDS: a renewal made today; PROMISES: one to come; "": neither


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
        self._expiry_steps, self._domain_steps = (
            self._steps[Anchor.EXPIRY],
            self._steps[Anchor.DOMAIN],
        )
        self._deducts = [r for r in policy.rules if r.deduct and r.anchor is Anchor.EXPIRY]
        after = policy.deletion_after
        self._deletion = None if after is None else timedelta(days=after)
        # Mailboxes read beyond those on a step: the day before each deletion step (the deletion
        # guard wants renewd to have seen the mailbox expired on an earlier run), and every
        # expiry up to the furthest day a rule that reads the balance looks ahead (a renewal due
        # before such a step takes its fee first, so its mailbox must be read to know it).
        eve = {step - 1 for rule in policy.rules if rule.delete for step in rule.steps}
        ahead = max(
            (-min(r.steps) for r in policy.rules if r.money and r.anchor is Anchor.EXPIRY),
            default=0,
        )
        self._ahead = timedelta(days=ahead)
        self.look_ahead = ahead  # days
        expiry = self._steps[Anchor.EXPIRY] | eve | set(range(-ahead, 1))
        self._watched = {**self._steps, Anchor.EXPIRY: expiry}
        self._cycles: dict[tuple[date, int, int | None, int | None, date | None], Cycle] = {}
        self._actions = Actions()

    def window(self, today: date, since: date | None = None) -> Window:
        """Days after `since` up to `today` (just `today` when `since` is None or not earlier)."""
        first = today if since is None or since >= today else since + timedelta(days=1)
        days = tuple(first + timedelta(days=n) for n in range((today - first).days + 1))
        due = {
            anchor: frozenset(day - timedelta(days=step) for day in days for step in steps)
            for anchor, steps in self._watched.items()
        }
        return Window(today, days, due, self.exhaustive)

    def plan(
        self,
        mailboxes: Iterable[Mailbox],
        window: Window,
        history: History,
        disputed: Collection[str] = frozenset(),
    ) -> DayPlan:
        """Decide the day for `mailboxes` (those that pass `window.may_match`; others are ignored).

        Mailboxes of one account are taken in order of expiry, then id, and share one purse: a
        renewal made today spends its fee and one still to come promises it, so a balance never
        pays, or is said to pay, for two renewals it cannot cover. Accounts in `disputed` (their
        rows disagree on the balance or the currency) get no rule that moves or reads money.
        """
        accounts: defaultdict[str, list[Mailbox]] = defaultdict(list)
        for mailbox in mailboxes:
            if window.may_match(mailbox):
                accounts[mailbox.account_id].append(mailbox)
        per_mailbox: list[tuple[tuple[date, str], list[Decision]]] = []
        for account_id, members in accounts.items():
            if len(members) == 1 and not self._possible_in(members[0], window):
                continue  # no step can be due, and no other mailbox shares the purse
            for turn in self.walk(members, window, history, account_id in disputed, True):
                if turn.decisions:
                    per_mailbox.append((_order(turn.mailbox), turn.decisions))
        per_mailbox.sort(key=lambda item: item[0])
        return DayPlan(window.today, [d for _, decisions in per_mailbox for d in decisions])

    def walk(
        self,
        members: list[Mailbox],
        window: Window,
        history: History,
        disputed: bool = False,
        checked: bool = False,
    ) -> list[Turn]:
        """One account's mailboxes in the plan's order, each with the money it could count on,
        its decisions, and what it did to the purse: a renewal made spends its fee, one still to
        come before a later mailbox's promises it (`plan`; `explain` shows it).

        A mailbox no step can be due for is not asked about in the history (a ledger's history
        notes the cycles it is asked about); `checked`: a lone mailbox is known to have one.
        """
        shared = len(members) > 1
        if shared:
            members = sorted(members, key=_order)
        unseen = history.unseen_debits(members[0].account_id)
        if not shared and not disputed:  # most accounts: no purse to share
            mailbox = members[0]
            funds = Funds(mailbox.balance - unseen)
            decide = self._decide if checked else self._decide_if_possible
            decisions = decide(mailbox, window, funds, history)
            spends = any(d.kind is DEDUCT and not d.superseded_by for d in decisions)
            return [Turn(mailbox, funds, decisions, SPENDS if spends else "")]
        turns = []
        if disputed:
            for mailbox in members:
                funds = Funds(mailbox.balance - unseen)
                decisions = self._decide_if_possible(mailbox, window, funds, history, money=False)
                turns.append(Turn(mailbox, funds, decisions, ""))
            return turns
        purse = Purse(members[0].balance, unseen)
        for mailbox in members:
            funds = purse.funds
            decisions = self._decide_if_possible(mailbox, window, funds, history)
            effect = ""
            if any(d.kind is DEDUCT and not d.superseded_by for d in decisions):
                purse.spend(mailbox.renewal_fee)
                effect = SPENDS
            elif self._renews_later(mailbox, window.today, funds, history):
                purse.promise(mailbox.renewal_fee)
                effect = PROMISES
            turns.append(Turn(mailbox, funds, decisions, effect))
        return turns

    def declined(
        self, mailbox: Mailbox, window: Window, history: History, funds: Funds
    ) -> list[Decision]:
        """The decisions if the billing backend declines this mailbox's deduction.

        Exactly as if the balance had been short: the policy's failure path, worked out now so
        that it can stand by in the ledger and go out the moment a decline is recorded.
        """
        return self._decide_if_possible(mailbox, window, funds, history, short=True)

    def _decide_if_possible(
        self,
        mailbox: Mailbox,
        window: Window,
        funds: Funds,
        history: History,
        money: bool = True,
        short: bool = False,
    ) -> list[Decision]:
        """`_decide`, for a mailbox some step can be due for in the window (no other is asked
        about in the history)."""
        if not self._possible_in(mailbox, window):
            return []
        return self._decide(mailbox, window, funds, history, money, short)

    def _decide(
        self,
        mailbox: Mailbox,
        window: Window,
        funds: Funds,
        history: History,
        money: bool = True,
        short: bool = False,
    ) -> list[Decision]:
        """The mailbox's due steps; within a group, the step that describes where the mailbox is
        now acts and supersedes the others.

        That is the step that came due last (after missed days, an earlier step is out of date),
        and among steps of the same day the rule with the highest priority. A renewal missed on
        an earlier day still counts as due today while the mailbox has not expired: it is still
        made then, and never after the expiry day. A missed retry (`auto_renew_retry`, opt-in)
        counts as due today until the deletion step: renewing is still possible until then.
        """
        state = history.cycle(mailbox.mailbox_id, mailbox.expires_on)
        due, cycle = self._due_steps(mailbox, window, funds.available, state, history, money, short)
        if cycle is None:
            return []
        today = window.today
        renewable = today < mailbox.expires_on
        retryable = self._deletion is None or today < mailbox.expires_on + self._deletion

        def rank(rule: Rule, day: date) -> tuple[date, int]:
            late = rule.retry and retryable
            current = rule.deduct and rule.anchor is EXPIRY and (renewable or late)
            return (today if current else day, rule.priority)

        if len(due) == 1:  # alone, a step is its group's winner
            rule, key, _ = due[0]
            return self._actions.of(rule, key, mailbox, today, "", funds, cycle)
        winners: dict[str, tuple[tuple[date, int], Rule]] = {}
        for rule, _, day in due:
            best = winners.get(rule.group)
            if rule.group and (best is None or rank(rule, day) > best[0]):
                winners[rule.group] = (rank(rule, day), rule)
        decisions: list[Decision] = []
        for rule, key, _ in sorted(due, key=lambda item: (-item[0].priority, item[0].id)):
            winner = winners[rule.group][1] if rule.group else rule
            superseded_by = "" if winner is rule else winner.id
            decisions.extend(
                self._actions.of(rule, key, mailbox, today, superseded_by, funds, cycle)
            )
        return decisions

    def _due_steps(
        self,
        mailbox: Mailbox,
        window: Window,
        available: Decimal,
        state: CycleState,
        history: History,
        money: bool,
        short: bool,
    ) -> tuple[list[tuple[Rule, StepKey, date]], Cycle | None]:
        """The latest step per rule that came due in the window, belongs to the current cycle and
        was not done before, with the day it came due; and the cycle (None: nothing matched).

        Evaluating each missed day and keeping only the latest step per rule is the catch-up:
        a late run still does what came due, but never sends a backlog of stale steps.
        """
        is_paid = mailbox.edition in self.policy.paid_editions
        latest: dict[str, tuple[Rule, date]] = {}
        for day in window.days:
            if not self._possible_on(mailbox, day):
                continue
            for rule_id in self.engine.matches_of(mailbox, day, is_paid, available, state, short):
                rule = self._rules[rule_id]
                if money or not rule.money:
                    latest[rule_id] = (rule, day)
        if not latest:
            return [], None
        cycle = self._cycle(mailbox, state)
        due = []
        for rule, day in latest.values():
            if rule.anchor is EXPIRY and not cycle.holds(day):
                continue
            anchor_date = mailbox.anchor_date(rule.anchor)
            assert anchor_date is not None  # noqa: S101 - the engine only matches present dates
            key = step_key(mailbox.mailbox_id, rule.id, anchor_date, (day - anchor_date).days)
            if not history.done(key):
                due.append((rule, key, day))
        return due, cycle

    def _cycle(self, mailbox: Mailbox, state: CycleState) -> Cycle:
        """`cycle_of`, kept by the only values it reads (a pure function of them): a range's
        mailboxes share a few thousand."""
        key = (
            mailbox.expires_on,
            mailbox.renewal_months,
            mailbox.anchor_day,
            state.anchor_day,
            state.began,
        )
        cycle = self._cycles.get(key)
        if cycle is None:
            if len(self._cycles) >= CYCLES:
                self._cycles.clear()
            cycle = self._cycles[key] = cycle_of(mailbox, state)
        return cycle

    def _renews_later(self, mailbox: Mailbox, today: date, funds: Funds, history: History) -> bool:
        """Whether a deducting rule will renew the mailbox on a later day before it expires, with
        the money it can count on today: its fee is then spoken for before later mailboxes'.

        Only a mailbox that expires within the furthest look-ahead of a rule reading the balance
        can come before such a step: those are read from the snapshot, later ones are not.
        """
        if mailbox.expires_on > today + self._ahead:
            return False
        state = history.cycle(mailbox.mailbox_id, mailbox.expires_on)
        if state.renewed:
            return False
        is_paid = mailbox.edition in self.policy.paid_editions
        for rule in self._deducts:
            for step in sorted(rule.steps):
                day = mailbox.expires_on + timedelta(days=step)
                if not today < day < mailbox.expires_on:
                    continue
                facts = derive(
                    mailbox, day, is_paid=is_paid, available=funds.available, cycle=state
                )
                if rule.id in self.engine.matches(facts):
                    return True
        return False

    def _possible_in(self, mailbox: Mailbox, window: Window) -> bool:
        """Whether some rule has a step for the mailbox on one of the window's days."""
        if self.exhaustive:
            return True
        steps, domain_steps = self._expiry_steps, self._domain_steps
        expires, domain = mailbox.expires_on, mailbox.domain_expires_on
        for day in window.days:
            if (day - expires).days in steps:
                return True
            if domain is not None and (day - domain).days in domain_steps:
                return True
        return False

    def _possible_on(self, mailbox: Mailbox, day: date) -> bool:
        if self.exhaustive or (day - mailbox.expires_on).days in self._expiry_steps:
            return True
        domain = mailbox.domain_expires_on
        return domain is not None and (day - domain).days in self._domain_steps


def _order(mailbox: Mailbox) -> tuple[date, str]:
    return mailbox.expires_on, mailbox.mailbox_id
