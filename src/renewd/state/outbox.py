"""The outbox: open rows for the executor, and each effect's outcome with what depends on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import RowMapping, and_, case, func, insert, select, update

from renewd.state.claims import Mark, Tenure, claim, fenced, record
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
        """The cycle's latest charge attempt: the one an open deduction is for (an earlier
        attempt is settled, or no later one could have been made)."""
        with self.engine.connect() as conn:
            query = select(orders).where(orders.c.mailbox_id == mailbox_id, orders.c.cycle == cycle)
            return conn.execute(query.order_by(orders.c.attempt.desc())).mappings().first()

    def mark_many(self, marks: Sequence[Mark], tenure: Tenure) -> frozenset[int] | None:
        """Claims and outcomes of several outbox rows in one transaction (one fsync on SQLite),
        with the run's counts: the ids claimed, or None when this process no longer holds the
        ledger (its outcomes are still written: they are true; it claims nothing more)."""
        with self.engine.begin() as conn:
            ours = not fenced(conn, tenure)
            claims = [m for m in marks if m.state == "sending"]
            taken = claim(conn, claims) if ours and claims else set()
            record(conn, [m for m in marks if m.state != "sending"])
            tenure.tally(conn, [m.count for m in marks if m.state != "sending"])
        return frozenset(taken) if ours else None

    def settle_and_claim(
        self, settled: Settled | None, action: RowMapping | None, tenure: Tenure
    ) -> tuple[bool, bool | None]:
        """A charge's outcome (`settle`) and the claim of the next one, in one transaction: one
        commit a charge instead of two, and still never more than one charge claimed and not
        settled. Returns whether the outcome landed (False: another renewd has taken the row
        over) and whether the claim did (None: this process no longer holds the ledger).
        """
        with self.engine.begin() as conn:
            landed = settled is not None and settle(conn, settled, tenure)
            if action is None:
                return landed, False
            if fenced(conn, tenure):
                return landed, None
            return landed, bool(claim(conn, [Mark(action["id"], "sending", action["attempts"])]))

    def claim_deletion(self, action: RowMapping, backend: str, tenure: Tenure) -> bool | None:
        """Claim a deletion and record that it is asked for: True if claimed, False if another
        renewd has it, None when this process no longer holds the ledger."""
        mailbox_id, cycle = action["mailbox_id"], action["cycle"]
        with self.engine.begin() as conn:
            if fenced(conn, tenure):
                return None
            if not claim(conn, [Mark(action["id"], "sending", action["attempts"])]):
                return False
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
        return True

    def deletion_settled(self, mark: Mark, mailbox_id: str, cycle: date, tenure: Tenure) -> bool:
        ok = mark.state == "done"
        with self.engine.begin() as conn:
            if not record(conn, [mark]):
                return False
            conn.execute(
                update(deletions)
                .where(deletions.c.mailbox_id == mailbox_id, deletions.c.cycle == cycle)
                .values(
                    state="done" if ok else "failed",
                    reference=mark.values.get("provider_id", ""),
                    error=mark.values.get("error", ""),
                    done_at=utcnow(),
                )
            )
            release_dependents(conn, mark.action_id, "success" if ok else "none")
            tenure.tally(conn, [mark.count])
        return True

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


@dataclass(frozen=True)
class Settled:
    """A charge's outcome: the mark of its row, its order and what billing said."""

    mark: Mark
    order_id: int
    state: str  # charged, declined or failed


def settle(conn: Any, settled: Settled, tenure: Tenure) -> bool:
    """Record a charge's outcome and release what depended on it; False if the row is no
    longer at its claim (another renewd has taken it over).

    charged: the success message goes. declined, or refused for another reason: the policy's
    failure path goes instead, so that the customer can still renew by hand in time.
    """
    mark, charged = settled.mark, settled.state == "charged"
    if not record(conn, [mark]):
        return False
    conn.execute(
        update(orders)
        .where(orders.c.id == settled.order_id)
        .values(
            state=settled.state,
            reference=mark.values.get("provider_id", ""),
            error=mark.values.get("error", ""),
            charged_at=utcnow() if charged else "",
        )
    )
    release_dependents(conn, mark.action_id, "success" if charged else "fallback")
    tenure.tally(conn, [mark.count])
    return True


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
    """An unconditional change, for planning and checking open rows (a cancel, a refused order):
    made under the lock, before the executor claims anything."""
    conn.execute(
        update(actions)
        .where(actions.c.id == action_id)
        .values(state=state, updated_at=utcnow(), **values)
    )


RELEASE = {
    "success": ("pending", "cancelled"),
    "fallback": ("cancelled", "pending"),
    "none": ("cancelled", "cancelled"),
}


def release_dependents(conn: Any, lead_id: int, outcome: str) -> None:
    """After a deduction or deletion, decide what its waiting and standing-by rows become.

    A standing-by row that the deduction superseded (a grace reminder on a retry day) is
    superseded after all when the charge succeeds, and acts, superseded by nothing, when not.
    """
    waiting, standby = RELEASE[outcome]
    now = utcnow()
    dependents = and_(actions.c.depends_on == lead_id)
    conn.execute(
        update(actions)
        .where(dependents, actions.c.state == "waiting")
        .values(state=waiting, updated_at=now)
    )
    standing = update(actions).where(dependents, actions.c.state == "standby")
    if outcome == "success":
        replaced = case((actions.c.superseded_by != "", "superseded"), else_="cancelled")
        conn.execute(standing.values(state=replaced, updated_at=now))
    else:
        conn.execute(standing.values(state=standby, superseded_by="", updated_at=now))
