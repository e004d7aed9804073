"""One day's decisions for a snapshot, computed without writing anything anywhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from renewd.config import Config
from renewd.evaluate import DayPlan, Evaluator
from renewd.history import History, MemoryHistory
from renewd.policy.model import Policy
from renewd.snapshot import Snapshot


@dataclass
class DayResult:
    plan: DayPlan
    snapshot: Snapshot


def plan_day(
    config: Config,
    policy: Policy,
    snapshot_path: Path,
    day: date,
    history: History | None = None,
    since: date | None = None,
) -> DayResult:
    """Stream the snapshot, keep only the mailboxes some rule can match, and plan the day.

    Only those candidates are held in memory, so a snapshot of millions of rows costs the memory
    of the few thousand that are near a step. A mailbox whose id appears twice gets no action.
    """
    evaluator = Evaluator(policy)
    window = evaluator.window(day, since)
    snapshot = Snapshot(snapshot_path, policy.editions, config.default_locale)
    candidates = [mailbox for mailbox in snapshot if window.may_match(mailbox)]
    candidates = [m for m in candidates if m.mailbox_id not in snapshot.duplicates]
    plan = evaluator.plan(candidates, window, history or MemoryHistory())
    return DayResult(plan, snapshot)
