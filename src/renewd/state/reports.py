"""Reading the ledger back for people: a run's actions, one mailbox's history, orders to invoice."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import RowMapping, select

from renewd.state.db import Database
from renewd.state.schema import actions, orders


class Reports(Database):
    """What people read back: a run's actions, a mailbox's history, a month's orders."""

    def run_actions(self, run_id: int) -> list[RowMapping]:
        with self.engine.connect() as conn:
            query = select(actions).where(actions.c.run_id == run_id).order_by(actions.c.id)
            return list(conn.execute(query).mappings())

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
