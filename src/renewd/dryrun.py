"""One day's plan for a snapshot: what dry-run prints and what run then acts on.

Both go through `plan_day`; the only difference is what happens to the plan afterwards. With a
ledger, the plan takes account of what earlier runs did (steps done, renewals paid, the days
since the last complete run); without one, every step is new. Nothing here writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from renewd.config import Config
from renewd.evaluate import DayPlan, Evaluator, Window
from renewd.history import History, MemoryHistory
from renewd.model import Anchor, Mailbox
from renewd.policy.model import Policy
from renewd.snapshot import Snapshot, Wanted

if TYPE_CHECKING:
    from renewd.state.ledger import Ledger


@dataclass
class DayResult:
    plan: DayPlan
    evaluator: Evaluator
    snapshot: Snapshot
    window: Window
    history: History
    taken_at: datetime
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    watched: dict[str, Mailbox] = field(default_factory=dict)


def taken_at(path: Path) -> datetime:
    """When the export was written: deductions after it cannot be in its balances."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)


def plan_day(
    config: Config, policy: Policy, snapshot_path: Path, day: date, ledger: Ledger | None = None
) -> DayResult:
    """Stream the snapshot, keep only the mailboxes some rule can reach, and plan the day.

    Only those candidates are held in memory, so a snapshot of millions of rows costs the memory
    of the few thousand near a step. A mailbox whose id appears twice gets no action.
    """
    evaluator = Evaluator(policy)
    since = ledger.catch_up_since() if ledger else None
    if since is not None:
        since = max(since, day - timedelta(days=config.catch_up_days + 1))
    window = evaluator.window(day, since)
    moment = taken_at(snapshot_path)
    watched = ledger.watched(moment) if ledger else set()
    snapshot = Snapshot(snapshot_path, policy.editions, config.default_locale)
    candidates: dict[str, Mailbox] = {}
    current: dict[str, Mailbox] = {}
    due = {
        anchor: frozenset(day.isoformat() for day in days) for anchor, days in window.due.items()
    }
    wanted = Wanted(due[Anchor.EXPIRY], due[Anchor.DOMAIN], frozenset(watched), day.isoformat())
    for mailbox in snapshot.scan(wanted):
        if mailbox.mailbox_id in watched:
            current[mailbox.mailbox_id] = mailbox
        if window.may_match(mailbox):
            candidates[mailbox.mailbox_id] = mailbox
    for duplicate in snapshot.duplicates:
        candidates.pop(duplicate, None)
    history: History = MemoryHistory()
    if ledger is not None:
        accounts = {m.account_id for m in candidates.values()}
        visible = {m.mailbox_id: m.expires_on for m in current.values()}
        history = ledger.history(candidates.keys(), accounts, moment, visible)
    plan = evaluator.plan(candidates.values(), window, history)
    return DayResult(plan, evaluator, snapshot, window, history, moment, candidates, current)
