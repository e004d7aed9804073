"""Receipts on outbox rows: each message's delivery state, moved only forward, by a compare-and-set.

Receipts are facts from outside, true whoever holds the ledger: they take no claim and need no
epoch, so `serve`'s listener, its bounce poller and a manual `renewd bounces` may record them at
once. Each is one conditional update (the row's state must still be one the receipt may replace),
so a repeat, a replay or a late report changes nothing, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping, Select, Update, bindparam, literal_column, select, update

from renewd.core.delivery import ORDER, Receipt, clean, replaceable
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
    if receipt.action_id is not None:
        key: int | str = receipt.action_id
    elif receipt.provider_id:
        key = receipt.provider_id
    else:
        return Recorded(receipt, "unknown")
    found = _find(receipt.channel, isinstance(key, int))
    row = conn.execute(found, {"key": key}).mappings().first()
    if row is None:
        return Recorded(receipt, "unknown")
    values = {
        "row_id": row["id"],
        "status": receipt.status,
        "code": clean(receipt.code, 16),
        "detail": clean(receipt.detail),
        "at": now,
    }
    moved = conn.execute(_move(receipt.channel, receipt.status), values).rowcount
    return Recorded(receipt, "recorded" if moved else "unchanged", row)


# Statements built once per channel and status (a callback listener records hundreds a second;
# building them anew costs more than running them). The channel is written inline (it is one
# of ours, never a peer's), since only then can the planner use the partial index on SMS.


@functools.cache
def _find(channel: str, by_row: bool) -> Select[Any]:
    if channel not in ORDER:  # written into the statement: only a channel of ours
        raise ValueError(f"no receipts on channel {channel!r}")
    key = actions.c.id if by_row else actions.c.provider_id
    mine = (actions.c.kind == "notify") & (actions.c.channel == literal_column(f"'{channel}'"))
    return select(*ROW).where(mine, key == bindparam("key")).limit(1)


@functools.cache
def _move(channel: str, status: str) -> Update:
    return (
        update(actions)
        .where(
            actions.c.id == bindparam("row_id"),
            actions.c.delivery.in_(replaceable(channel, status)),
        )
        .values(
            delivery=bindparam("status"),
            delivery_code=bindparam("code"),
            delivery_detail=bindparam("detail"),
            delivery_at=bindparam("at"),
        )
    )
