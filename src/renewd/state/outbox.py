"""The outbox: open rows for the executor, and each effect's outcome with what depends on it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import RowMapping, and_, bindparam, func, insert, select, update

from renewd.state.db import OPEN_ACTION, Database, utcnow
from renewd.state.schema import actions, deletions, orders


class Outbox(Database):
    """The executor's side of the outbox: open rows a page at a time, and their outcomes."""

    def open_actions(
        self, kind: str, channel: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[RowMapping]:
        """Open rows of one kind (and channel) with ids above `after`, the first `limit` in id
        order: a page, so that a big day's outbox is never read all at once."""
        query = select(actions).where(
            actions.c.kind == kind, actions.c.state.in_(OPEN_ACTION), actions.c.id > after
        )
        if channel is not None:
            query = query.where(actions.c.channel == channel)
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(actions.c.id).limit(limit)).mappings())

    def open_channels(self) -> list[str]:
        """The channels with messages to send."""
        query = select(actions.c.channel).where(
            actions.c.kind == "notify", actions.c.state.in_(OPEN_ACTION)
        )
        with self.engine.connect() as conn:
            return sorted(conn.execute(query.distinct()).scalars())

    def open_rows(self, run_id: int) -> list[RowMapping]:
        """Rows earlier runs left pending or in flight: to be checked against today's snapshot."""
        with self.engine.connect() as conn:
            query = select(actions).where(
                actions.c.state.in_(OPEN_ACTION), actions.c.run_id != run_id
            )
            return list(conn.execute(query.order_by(actions.c.id)).mappings())

    def cancel(self, action_id: int, reason: str) -> None:
        """Drop an open row, what waits for it, and its order if it was a charge not yet made."""
        with self.engine.begin() as conn:
            cancel_row(conn, action_id, reason)

    def order_for(self, mailbox_id: str, cycle: date) -> RowMapping | None:
        with self.engine.connect() as conn:
            query = select(orders).where(orders.c.mailbox_id == mailbox_id, orders.c.cycle == cycle)
            return conn.execute(query).mappings().first()

    def mark(self, action_id: int, state: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            mark_row(conn, action_id, state, **values)

    def mark_many(self, changes: Sequence[tuple[int, str, dict[str, Any]]]) -> None:
        """Several outbox state changes in one transaction (one fsync on SQLite).

        Changes of the same shape go as one executemany: one statement compiled, not one per
        row. That reorders them, so a batch naming a row twice is written change by change.
        """
        ids = {action_id for action_id, _, _ in changes}
        with self.engine.begin() as conn:
            if len(ids) < len(changes):
                for action_id, state, values in changes:
                    mark_row(conn, action_id, state, **values)
                return
            now = utcnow()
            shapes: defaultdict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
            for action_id, state, values in changes:
                shape = (state if state in ATTEMPTS else "", *sorted(values))
                row = {"state": STORED.get(state, state), "updated_at": now, "_id": action_id}
                shapes[shape].append({**values, **row})
            for shape, rows in shapes.items():
                conn.execute(_MARKS[shape[0]], rows)

    def settle_order(
        self, action_id: int, order_id: int, state: str, reference: str, error: str
    ) -> None:
        """Record a charge's outcome and release what depended on it, in one transaction.

        charged: the success message goes. declined, or refused for another reason: the policy's
        failure path goes instead, so that the customer can still renew by hand in time.
        """
        charged = state == "charged"
        if state == "declined" and not error:
            error = "declined by billing"
        with self.engine.begin() as conn:
            conn.execute(
                update(orders)
                .where(orders.c.id == order_id)
                .values(
                    state=state,
                    reference=reference,
                    error=error,
                    charged_at=utcnow() if charged else "",
                )
            )
            mark_row(
                conn, action_id, "done" if charged else "failed", provider_id=reference, error=error
            )
            release_dependents(conn, action_id, "success" if charged else "fallback")

    def deletion_requested(
        self, action_id: int, mailbox_id: str, cycle: date, backend: str
    ) -> None:
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(deletions.c.id).where(
                    deletions.c.mailbox_id == mailbox_id, deletions.c.cycle == cycle
                )
            ).first()
            if exists is None:
                conn.execute(
                    insert(deletions).values(
                        mailbox_id=mailbox_id,
                        cycle=cycle,
                        state="requested",
                        backend=backend,
                        requested_at=utcnow(),
                    )
                )
            mark_row(conn, action_id, "sending")

    def deletion_settled(
        self, action_id: int, mailbox_id: str, cycle: date, ok: bool, reference: str, error: str
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(deletions)
                .where(deletions.c.mailbox_id == mailbox_id, deletions.c.cycle == cycle)
                .values(
                    state="done" if ok else "failed",
                    reference=reference,
                    error=error,
                    done_at=utcnow(),
                )
            )
            mark_row(
                conn, action_id, "done" if ok else "failed", provider_id=reference, error=error
            )
            release_dependents(conn, action_id, "success" if ok else "none")

    def held_count(self) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).select_from(actions).where(actions.c.state == "held")
            return int(conn.execute(query).scalar_one())

    def outbox_depth(self) -> int:
        with self.engine.connect() as conn:
            query = (
                select(func.count()).select_from(actions).where(actions.c.state.in_(OPEN_ACTION))
            )
            return int(conn.execute(query).scalar_one())


def cancel_row(conn: Any, action_id: int, reason: str) -> None:
    row = conn.execute(
        select(actions.c.kind, actions.c.mailbox_id, actions.c.cycle).where(
            actions.c.id == action_id
        )
    ).first()
    mark_row(conn, action_id, "cancelled", error=reason)
    release_dependents(conn, action_id, "none")
    if row is not None and row.kind == "deduct":
        pending = and_(
            orders.c.mailbox_id == row.mailbox_id,
            orders.c.cycle == row.cycle,
            orders.c.state == "pending",
        )
        conn.execute(update(orders).where(pending).values(state="cancelled", error=reason))


def mark_row(conn: Any, action_id: int, state: str, **values: Any) -> None:
    if state in ATTEMPTS:
        values["attempts"] = actions.c.attempts + ATTEMPTS[state]
    conn.execute(
        update(actions)
        .where(actions.c.id == action_id)
        .values(state=STORED.get(state, state), updated_at=utcnow(), **values)
    )


# Marks that count an attempt: "sending" takes one; "released" (a message claimed but never
# sent, back to pending) gives it back.

ATTEMPTS = {"sending": 1, "released": -1}

STORED = {"released": "pending"}

_MARK = update(actions).where(actions.c.id == bindparam("_id"))

_MARKS = {
    "": _MARK,
    **{state: _MARK.values(attempts=actions.c.attempts + step) for state, step in ATTEMPTS.items()},
}


RELEASE = {
    "success": ("pending", "cancelled"),
    "fallback": ("cancelled", "pending"),
    "none": ("cancelled", "cancelled"),
}


def release_dependents(conn: Any, lead_id: int, outcome: str) -> None:
    """After a deduction or deletion, decide what its waiting and standing-by rows become."""
    waiting, standby = RELEASE[outcome]
    now = utcnow()
    dependents = and_(actions.c.depends_on == lead_id)
    conn.execute(
        update(actions)
        .where(dependents, actions.c.state == "waiting")
        .values(state=waiting, updated_at=now)
    )
    conn.execute(
        update(actions)
        .where(dependents, actions.c.state == "standby")
        .values(state=standby, updated_at=now)
    )
