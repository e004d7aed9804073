"""A run's plan written to the ledger in one transaction: outbox rows, orders, sightings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Table, insert, select, update

from renewd.core.batching import batched
from renewd.state.db import BATCH, Database, chunks, utcnow
from renewd.state.outbox import cancel_row, mark_row, release_dependents
from renewd.state.schema import LIVE_ORDER, actions, cycle_starts, orders, sightings


class Plans(Database):
    """Writing a run's plan: its outbox rows, orders and sightings, before any effect."""

    def record_plan(
        self,
        run_id: int,
        steps: Iterable[PlannedStep],
        sighted: Iterable[tuple[str, date]],
        day: date,
        began: Iterable[tuple[tuple[str, date], date]] = (),
    ) -> int:
        """Write a run's decisions in one transaction, before any effect; returns rows written.

        Each step's rows go in together: the deduct or delete first, then the rows that depend on
        its outcome (the success message waits; the failure path stands by). A step held on an
        earlier run is decided again here and its rows take the new state. Steps and sightings
        are read as they come, a batch at a time: a big day's plan is never all in memory.
        `began`: cycles renewed elsewhere, seen for the first time, with that day.
        """
        written = 0
        now = utcnow()
        with self.engine.begin() as conn:
            held = select(actions.c.id).where(actions.c.state == "held", actions.c.run_id != run_id)
            undecided = set(conn.execute(held).scalars())
            for batch in batched(steps, BATCH):
                known = _known_actions(conn, {row["mailbox_id"] for g in batch for row in g.rows()})
                fresh, ids = _write_steps(conn, run_id, batch, now, known)
                written += fresh
                undecided -= ids
            for action_id in sorted(undecided):  # today's plan no longer asks for it
                cancel_row(conn, action_id, "held, then no longer decided on a later run")
            for sights in batched(sighted, BATCH):
                pairs = dict.fromkeys(sights)  # a repeat in one batch is the same sighting
                rows = [
                    {
                        "mailbox_id": m,
                        "cycle": c,
                        "first_seen": day,
                        "snapshot_sha256": self.snapshot_sha256,
                    }
                    for m, c in pairs
                ]
                _first_seen(conn, sightings, rows)
            for starts in batched(began, BATCH):
                rows = [{"mailbox_id": m, "cycle": c, "began": d} for (m, c), d in starts]
                _first_seen(conn, cycle_starts, rows)
        return written


@dataclass
class PlannedStep:
    """One rule's step for one mailbox: its lead row (deduct or delete, if any) and the rest.

    `dependents` wait for the lead to succeed; `fallback` stands by for it to be declined.
    Both are empty when there is no lead.
    """

    lead: dict[str, Any] | None
    dependents: list[dict[str, Any]]
    fallback: list[dict[str, Any]] = field(default_factory=list)
    order: dict[str, Any] | None = None

    def rows(self) -> list[dict[str, Any]]:
        return [*([self.lead] if self.lead else []), *self.dependents, *self.fallback]


# An outbox row's step: unique in the table (uq_action_step).

STEP_KEY = ("mailbox_id", "rule", "cycle", "step", "kind", "channel")


Known = dict[tuple[Any, ...], tuple[int, str]]  # a step's row: its id and state


def _known_actions(conn: Any, mailbox_ids: set[str]) -> Known:
    """The rows already written for these mailboxes, read in a few queries, not one per row."""
    known: Known = {}
    columns = [actions.c[name] for name in STEP_KEY]
    for chunk in chunks(mailbox_ids):
        query = select(actions.c.id, actions.c.state, *columns).where(
            actions.c.mailbox_id.in_(chunk)
        )
        for row in conn.execute(query):
            known[tuple(row[2:])] = (row.id, row.state)
    return known


def _write_steps(
    conn: Any, run_id: int, steps: list[PlannedStep], now: str, known: Known
) -> tuple[int, set[int]]:
    """Write a batch of steps; returns how many rows are new and the ids it decided.

    The leads go first, in one statement, for the ids their messages depend on; then the
    messages and fallbacks of every step, in another; then the charges' orders.
    """
    leads = iter(_upsert(conn, run_id, [(s.lead, None) for s in steps if s.lead], now, known))
    lead_of = [next(leads) if s.lead else None for s in steps]
    rest = [
        (row, None if lead is None else lead[0])
        for step, lead in zip(steps, lead_of, strict=True)
        for row in [*step.dependents, *step.fallback]
    ]
    others = _upsert(conn, run_id, rest, now, known)
    written = sum(fresh for _, fresh in [*filter(None, lead_of), *others])
    ids = {row_id for row_id, _ in [*filter(None, lead_of), *others]}
    charges = [
        (step.order, lead[0])
        for step, lead in zip(steps, lead_of, strict=True)
        if lead is not None
        and lead[1]
        and step.order is not None
        and step.lead is not None
        and step.lead["state"] in ("pending", "done")  # done: a free renewal
    ]
    _insert_orders(conn, charges, now)
    return written, ids


def _upsert(
    conn: Any,
    run_id: int,
    rows: list[tuple[dict[str, Any], int | None]],
    now: str,
    known: Known,
) -> list[tuple[int, int]]:
    """Insert decided rows (and depends_on); a row held earlier takes the new decision; anything
    else stays. Returns each row's id and 1 if it is new (or no longer held), in order."""
    result: list[tuple[int, int]] = []
    new: list[dict[str, Any]] = []
    pending: dict[tuple[Any, ...], int] = {}  # a new row's key: its place in `new`
    waiting: list[tuple[int, int]] = []  # a place in `result` and the new row it waits for
    for row, depends_on in rows:
        key = tuple(row[name] for name in STEP_KEY)
        values = {**row, "run_id": run_id, "updated_at": now, "depends_on": depends_on}
        existing = known.get(key)
        if key in pending or existing is None:
            fresh = int(key not in pending)  # a repeat in this batch is the same row
            pending.setdefault(key, len(new))
            if fresh:
                new.append(values)
            waiting.append((len(result), pending[key]))
            result.append((0, fresh))
            continue
        row_id, state = existing
        if state == "held":
            conn.execute(update(actions).where(actions.c.id == row_id).values(**values))
            known[key] = (row_id, row["state"])
        result.append((row_id, int(state == "held" and row["state"] != "held")))
    ids = _insert_ids(conn, new)
    for place, n in waiting:
        result[place] = (ids[n], result[place][1])
    for key, n in pending.items():
        known[key] = (ids[n], new[n]["state"])
    return result


def _insert_ids(conn: Any, values: list[dict[str, Any]]) -> list[int]:
    """Insert outbox rows in one statement; their ids, in order."""
    if not values:
        return []
    statement = insert(actions).returning(actions.c.id, sort_by_parameter_order=True)
    return [row.id for row in conn.execute(statement, values)]


def charge_key(mailbox_id: str, cycle: date, attempt: int = 1) -> str:
    """The idempotency key of one charge attempt: billing acts once per key, so a retried
    request (same attempt) is never a second charge, and a retry of a declined charge (a new
    attempt) is not answered with the first decline. The first attempt's key has no number."""
    key = f"renewd:charge:{mailbox_id}:{cycle.isoformat()}"
    return key if attempt == 1 else f"{key}:{attempt}"


def _insert_orders(conn: Any, charges: list[tuple[dict[str, Any], int]], now: str) -> None:
    """Each charge is its cycle's next attempt, with a key of its own. A cycle that already has a
    live order (pending, charged or free) gets no second one: that deduction fails instead (the
    database would refuse it anyway: `uq_order_live`)."""
    if not charges:
        return
    query = select(orders.c.mailbox_id, orders.c.cycle, orders.c.attempt, orders.c.state)
    mailbox_ids = [order["mailbox_id"] for order, _ in charges]
    made: dict[tuple[str, date], tuple[int, bool]] = {}  # attempts so far, and whether one lives
    for row in conn.execute(query.where(orders.c.mailbox_id.in_(mailbox_ids))):
        attempts, live = made.get((row.mailbox_id, row.cycle), (0, False))
        live = live or row.state in LIVE_ORDER
        made[row.mailbox_id, row.cycle] = (max(attempts, row.attempt), live)
    new = []
    for order, action_id in charges:
        cycle = (order["mailbox_id"], order["cycle"])
        attempts, live = made.get(cycle, (0, False))
        if live:
            mark_row(conn, action_id, "failed", error="this cycle already has a consumption order")
            release_dependents(conn, action_id, "none")
            continue
        attempt = attempts + 1
        made[cycle] = (attempt, True)
        key = charge_key(order["mailbox_id"], order["cycle"], attempt)
        new.append(
            {
                "state": "pending",
                **order,
                "attempt": attempt,
                "idempotency_key": key,
                "created_at": now,
                "reference": "",
                "error": "",
                "charged_at": "",
            }
        )
    if new:
        conn.execute(insert(orders), new)


def _first_seen(conn: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert the rows whose (mailbox, cycle) the table does not hold yet: the first day renewd
    saw something is kept, later sightings change nothing."""
    query = select(table.c.mailbox_id, table.c.cycle)
    mailbox_ids = {row["mailbox_id"] for row in rows}
    seen = {tuple(row) for row in conn.execute(query.where(table.c.mailbox_id.in_(mailbox_ids)))}
    new = [row for row in rows if (row["mailbox_id"], row["cycle"]) not in seen]
    if new:
        conn.execute(insert(table), new)
