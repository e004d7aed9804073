"""Receipts on outbox rows: each message's delivery state, moved only forward, by a compare-and-set.

Receipts are facts from outside, true whoever holds the ledger: they take no claim and need no
epoch, so `serve`'s listener, its bounce poller and a manual `renewd bounces` may record them at
once. Each is one conditional update (the row's state must still be one the receipt may replace),
so a repeat, a replay or a late report changes nothing, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping, bindparam, select, update

from renewd.core.delivery import Receipt, clean, replaceable
from renewd.state.db import Database, utcnow
from renewd.state.schema import actions

# What a receipt's outcome tells about its message (for logs, metrics and final warnings).
ROW = (
    actions.c.id,
    actions.c.mailbox_id,
    actions.c.rule,
    actions.c.cycle,
    actions.c.step,
    actions.c.anchor,
    actions.c.channel,
    actions.c.delivery,
)


@dataclass(frozen=True)
class Recorded:
    """What became of one receipt: `recorded` (the message's state moved), `unchanged` (a
    repeat, or a report that comes too late to matter) or `unknown` (no such message)."""

    receipt: Receipt
    outcome: str
    row: RowMapping | None = None


class Receipts(Database):
    """Delivery states recorded from receipts."""

    def record_receipts(self, receipts: Sequence[Receipt]) -> list[Recorded]:
        """Record several receipts in one transaction (one fsync on SQLite), in order."""
        now = utcnow()
        with self.engine.begin() as conn:
            return [_record(conn, receipt, now) for receipt in receipts]


def _record(conn: Any, receipt: Receipt, now: str) -> Recorded:
    # The channel inline, not bound: only then can the planner use the partial index on SMS.
    channel: Any = bindparam("channel", receipt.channel, literal_execute=True)
    mine = (actions.c.kind == "notify") & (actions.c.channel == channel)
    if receipt.action_id is not None:
        found = select(*ROW).where(mine, actions.c.id == receipt.action_id)
    elif receipt.provider_id:
        found = select(*ROW).where(mine, actions.c.provider_id == receipt.provider_id)
    else:
        return Recorded(receipt, "unknown")
    row = conn.execute(found.limit(1)).mappings().first()
    if row is None:
        return Recorded(receipt, "unknown")
    moved = conn.execute(
        update(actions)
        .where(
            actions.c.id == row["id"],
            actions.c.delivery.in_(replaceable(receipt.channel, receipt.status)),
        )
        .values(
            delivery=receipt.status,
            delivery_code=clean(receipt.code, 16),
            delivery_detail=clean(receipt.detail),
            delivery_at=now,
        )
    ).rowcount
    return Recorded(receipt, "recorded" if moved else "unchanged", row)
