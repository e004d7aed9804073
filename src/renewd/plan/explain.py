"""One mailbox on one day, rule by rule (`renewd explain`): the answer to "why did I get this?"

The mailbox is planned exactly as dry-run plans it (same window, same history, its whole account
at the same purse), so its decisions are dry-run's. Around them: for every rule, the facts it
read and what became of it; a rule that matched but did not act was superseded, already done in
this cycle, on a step before the cycle began, or stood down for a disputed account; a rule that
did not match says which part of its condition failed (`policy.reasons`, held to the engine's
answers by a property test).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from renewd.config.model import Config
from renewd.core.cycles import Cycle, CycleState, cycle_of
from renewd.core.errors import RenewdError
from renewd.core.facts import derive
from renewd.core.history import History, MemoryHistory, Past
from renewd.core.model import Anchor, Decision, Mailbox, StepKey
from renewd.plan.day import day_window, wanted
from renewd.plan.evaluate import Evaluator, Turn, Window
from renewd.policy.conditions import referenced
from renewd.policy.model import Policy, Rule
from renewd.policy.reasons import failures
from renewd.snapshot.reader import Snapshot, Wanted, taken_at

ACTS, SUPERSEDED, DONE = "acts", "superseded", "done"
BEFORE_CYCLE, STANDS_DOWN, NO = "before cycle", "stands down", "no"


@dataclass(frozen=True)
class Verdict:
    """What became of one rule. `day`: the day whose facts `read` shows (the latest day it
    matched, else the day explained); `step`: the step it matched on."""

    rule: Rule
    status: str
    day: date
    read: dict[str, Any]
    step: StepKey | None = None
    superseded_by: str = ""
    failed: tuple[str, ...] = ()
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """The mailbox, the days evaluated, what earlier runs hold of its cycle, its account's
    purse in the plan's order (`turns`) and a verdict per rule."""

    mailbox: Mailbox
    window: Window
    reachable: bool  # some rule has a step on one of the days (else dry-run never looks at it)
    facts: dict[str, Any]  # every fact on the day explained
    cycle: Cycle
    state: CycleState
    done: tuple[StepKey, ...]  # steps earlier runs took (or superseded) that would come again
    first_seen: date | None
    unseen: Decimal  # renewd's charges to the account the snapshot cannot show yet
    turns: tuple[Turn, ...]
    disputed: bool
    verdicts: tuple[Verdict, ...]

    @property
    def turn(self) -> Turn:
        return next(t for t in self.turns if t.mailbox.mailbox_id == self.mailbox.mailbox_id)

    @property
    def decisions(self) -> list[Decision]:
        """Exactly dry-run's for this mailbox, superseded steps included."""
        return self.turn.decisions


def explain(
    evaluator: Evaluator,
    mailbox: Mailbox,
    account: list[Mailbox],
    window: Window,
    history: History,
    disputed: bool = False,
) -> Explanation:
    """Plan `mailbox` with the rest of its `account` (the mailboxes dry-run would plan with it)
    and say why each rule did or did not act."""
    members = {m.mailbox_id: m for m in account if window.may_match(m)}
    members[mailbox.mailbox_id] = mailbox
    turns = tuple(evaluator.walk(list(members.values()), window, history, disputed))
    turn = next(t for t in turns if t.mailbox.mailbox_id == mailbox.mailbox_id)
    state = history.cycle(mailbox.mailbox_id, mailbox.expires_on)
    cycle = cycle_of(mailbox, state)
    is_paid = mailbox.edition in evaluator.policy.paid_editions
    facts = {
        day: derive(mailbox, day, is_paid=is_paid, available=turn.funds.available, cycle=state)
        for day in window.days
    }
    judge = _Judge(evaluator, mailbox, window, history, cycle, disputed, facts, turn)
    return Explanation(
        mailbox,
        window,
        window.may_match(mailbox),
        facts[window.today],
        cycle,
        state,
        tuple(_done(evaluator.policy, mailbox, history)),
        history.first_seen(mailbox.mailbox_id, mailbox.expires_on),
        history.unseen_debits(mailbox.account_id),
        turns,
        disputed,
        tuple(judge(rule) for rule in evaluator.policy.rules),
    )


@dataclass
class _Judge:
    evaluator: Evaluator
    mailbox: Mailbox
    window: Window
    history: History
    cycle: Cycle
    disputed: bool
    facts: dict[date, dict[str, Any]]
    turn: Turn

    def __call__(self, rule: Rule) -> Verdict:
        names = sorted(referenced(rule.when))
        matched = [
            d for d in self.window.days if rule.id in self.evaluator.engine.matches(self.facts[d])
        ]
        if not matched:
            today = self.facts[self.window.today]
            read = {name: today.get(name) for name in names}
            return Verdict(
                rule, NO, self.window.today, read, failed=tuple(failures(rule.when, today))
            )
        day = matched[-1]  # the latest step per rule is the one that counts (catch-up)
        read = {name: self.facts[day].get(name) for name in names}
        anchor_date = self.mailbox.anchor_date(rule.anchor)
        assert anchor_date is not None  # noqa: S101 - the engine only matches present dates
        key = StepKey(self.mailbox.mailbox_id, rule.id, anchor_date, (day - anchor_date).days)
        if self.disputed and rule.money:
            return Verdict(rule, STANDS_DOWN, day, read, key)
        if rule.anchor is Anchor.EXPIRY and not self.cycle.holds(day):
            return Verdict(rule, BEFORE_CYCLE, day, read, key)
        if self.history.done(key):
            return Verdict(rule, DONE, day, read, key)
        own = tuple(d for d in self.turn.decisions if d.rule == rule.id)
        by = own[0].superseded_by if own else ""
        return Verdict(rule, SUPERSEDED if by else ACTS, day, read, key, by, decisions=own)


def _done(policy: Policy, mailbox: Mailbox, history: History) -> list[StepKey]:
    """Steps of the mailbox's current cycles (and its domain's) that earlier runs hold."""
    found = []
    for rule in policy.rules:
        anchor_date = mailbox.anchor_date(rule.anchor)
        if anchor_date is None:
            continue
        for step in sorted(rule.steps):
            key = StepKey(mailbox.mailbox_id, rule.id, anchor_date, step)
            if history.done(key):
                found.append(key)
    return found


@dataclass(frozen=True)
class Found:
    """What `explain_mailbox` read: the explanation (None for a mailbox that appears on more
    than one row: it gets no action at all) and the snapshot's counts and errors."""

    explanation: Explanation | None
    snapshot: Snapshot


def explain_mailbox(
    config: Config,
    policy: Policy,
    snapshot_path: Path,
    day: date,
    mailbox_id: str,
    ledger: Past | None = None,
) -> Found:
    """Read the mailbox's row and its account's, and the ledger's history of them, as dry-run
    would on `day`, and explain the mailbox. Two passes over the snapshot (first the row, then
    its account's rows near a step), so memory stays flat whatever its size."""
    evaluator = Evaluator(policy)
    window = day_window(config, evaluator, day, ledger)
    mailbox = _row(config, policy, snapshot_path, mailbox_id)
    moment = taken_at(snapshot_path)
    watched = ledger.watched(moment) if ledger else set()
    snapshot = Snapshot(snapshot_path, policy.editions, config.default_locale)
    account: list[Mailbox] = []
    visible: dict[str, date] = {}
    for row in snapshot.scan(wanted(window, watched | {mailbox_id})):
        if row.mailbox_id in watched:
            visible[row.mailbox_id] = row.expires_on
        if row.account_id == mailbox.account_id and row.mailbox_id != mailbox_id:
            account.append(row)
    if mailbox_id in snapshot.duplicates:
        return Found(None, snapshot)
    account = [m for m in account if m.mailbox_id not in snapshot.duplicates]
    history: History = MemoryHistory()
    if ledger is not None:
        ids = [mailbox_id, *(m.mailbox_id for m in account)]
        history = ledger.history(ids, {mailbox.account_id}, moment, visible, day)
    disputed = mailbox.account_id in snapshot.conflicting_accounts
    return Found(explain(evaluator, mailbox, account, window, history, disputed), snapshot)


def _row(config: Config, policy: Policy, path: Path, mailbox_id: str) -> Mailbox:
    """The mailbox's valid row, or an error that says why there is none."""
    snapshot = Snapshot(path, policy.editions, config.default_locale)
    # the whole file is read (a repeat of the id is known only at its end)
    rows = list(snapshot.scan(Wanted(frozenset(), ids=frozenset({mailbox_id}))))
    found = rows[0] if rows else None
    if found is not None:
        return found
    if mailbox_id in snapshot.rejected_ids:
        why = next((f": {e}" for e in snapshot.errors if e.mailbox_id == mailbox_id), "")
        raise RenewdError(f"the row of mailbox {mailbox_id!r} was rejected{why}")
    raise RenewdError(f"{path}: no mailbox {mailbox_id!r} in the snapshot")
