"""Reading the ledger back for people: a run's actions, one mailbox's history, orders to invoice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator
from datetime import date

from sqlalchemy import RowMapping, func, select

from renewd.state.db import OPEN_ACTION, Database
from renewd.state.schema import actions, orders, runs


class Reports(Database):
    """What people read back: a run's actions, a mailbox's history, a month's orders."""

    def run_actions(self, run_id: int) -> list[RowMapping]:
        with self.engine.connect() as conn:
            query = select(actions).where(actions.c.run_id == run_id).order_by(actions.c.id)
            return list(conn.execute(query).mappings())

    def open_counts(self) -> Counter[str]:
        """Open outbox rows by kind, with the messages that wait for an open charge or deletion:
        what the executor has before it (the totals of a progress display)."""
        lead = actions.alias("lead")
        waiting = (
            select(actions.c.kind, func.count())
            .select_from(actions.join(lead, actions.c.depends_on == lead.c.id))
            .where(actions.c.state == "waiting", lead.c.state.in_(OPEN_ACTION))
            .group_by(actions.c.kind)
        )
        open_rows = (
            select(actions.c.kind, func.count())
            .where(actions.c.state.in_(OPEN_ACTION))
            .group_by(actions.c.kind)
        )
        counts: Counter[str] = Counter()
        with self.engine.connect() as conn:
            for query in (open_rows, waiting):
                counts.update({kind: int(n) for kind, n in conn.execute(query)})
        return counts

    def states_on(self, days: Collection[date]) -> Counter[str]:
        """Outbox rows recorded for these days, by state: what a dry-run of them no longer shows.

        Found through the runs of those days (actions are indexed by run, not by day: a year's
        ledger is never scanned whole for one day's count)."""
        of_days = select(runs.c.id).where(runs.c.day.in_(sorted(days)))
        query = (
            select(actions.c.state, func.count())
            .where(actions.c.run_id.in_(of_days), actions.c.day.in_(sorted(days)))
            .group_by(actions.c.state)
        )
        with self.engine.connect() as conn:
            return Counter({state: int(n) for state, n in conn.execute(query)})

    def run_record(self, run_id: int) -> RowMapping | None:
        with self.engine.connect() as conn:
            return conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()

    def held_rows(self, run_id: int) -> Iterator[RowMapping]:
        """A run's held deletions and deductions (until a later run decides them again), in the
        order the run's summary names them: by cycle, then mailbox."""
        query = (
            select(actions)
            .where(actions.c.run_id == run_id, actions.c.state == "held")
            .order_by(actions.c.cycle, actions.c.mailbox_id, actions.c.id)
        )
        with self.engine.connect() as conn:
            yield from conn.execute(query).mappings()

    def mailbox_history(self, mailbox_id: str) -> list[RowMapping]:
        with self.engine.connect() as conn:
            query = select(actions).where(actions.c.mailbox_id == mailbox_id).order_by(actions.c.id)
            return list(conn.execute(query).mappings())

    def orders_in(self, start: str, end: str) -> Iterator[RowMapping]:
        """Charged orders with charged_at in [start, end) (UTC ISO): what can be invoiced."""
        with self.engine.connect() as conn:
            query = (
                select(orders)
                .where(
                    orders.c.state == "charged",
                    orders.c.charged_at >= start,
                    orders.c.charged_at < end,
                )
                .order_by(orders.c.charged_at, orders.c.id)
            )
            yield from conn.execute(query).mappings()
