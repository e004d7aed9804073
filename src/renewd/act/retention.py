"""Pruning the ledger: after each day's run (a bounded amount), and by `renewd prune` (all of it).

The policy says how far back a run can still look into a cycle (its latest step after the
expiry, plus `catch_up_days`); `state.retention` decides, within that, what may go.
"""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy.exc import SQLAlchemyError

from renewd.config.model import Config
from renewd.policy.model import Policy
from renewd.state.db import Database, database_url, sqlite_path
from renewd.state.retention import Pruned, Window, prune

log = logging.getLogger("renewd")

# Old runs a daily run prunes at most: a month of history a day, so the first run after an
# upgrade on years of ledger stays short (`renewd prune` does the rest at once).
DAILY_RUNS = 31


def window(config: Config, policy: Policy, today: date) -> Window:
    latest_step = max((max(rule.steps) for rule in policy.rules if rule.steps), default=0)
    reach = max(latest_step, 0) + config.catch_up_days + 1
    return Window.of(today, config.retention_days, reach)


def prune_ledger(
    config: Config, policy: Policy, ledger: Database, today: date, max_runs: int | None = None
) -> Pruned:
    """Prune under the ledger lock the caller holds."""
    return prune(ledger, window(config, policy, today), max_runs)


def after_run(config: Config, policy: Policy, ledger: Database, today: date) -> Pruned | None:
    """The daily run's share of pruning; a database error leaves it for the next run (the day's
    work is done and recorded: forgetting old rows can wait)."""
    try:
        pruned = prune_ledger(config, policy, ledger, today, DAILY_RUNS)
    except SQLAlchemyError as exc:
        log.warning("pruning the ledger failed, left for the next run: %s", exc.__class__.__name__)
        return None
    if pruned:
        log.info("pruned what is older than %d days: %s", config.retention_days, pruned)
    return pruned


def prune_now(config: Config, policy: Policy, today: date, wait: float = 0.0) -> Pruned | None:
    """`renewd prune`: all that may go, under the ledger lock (a running serve or run holds it:
    wait for it, or exit 75); None when there is no ledger yet."""
    from renewd.state.ledger import Ledger
    from renewd.state.lock import RunLock

    url = database_url(config.ledger, config.base)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    ledger = Ledger(url)
    try:
        if ledger.version() is None:
            return None
        with RunLock(ledger.engine, wait):
            ledger.upgrade()
            return prune_ledger(config, policy, ledger, today)
    finally:
        ledger.close()
