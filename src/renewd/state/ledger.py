"""The ledger: runs, every decided step and its outbox state, consumption orders, deletions.

Written through SQLAlchemy Core with nothing dialect-specific in the queries, so the same code
runs on SQLite (the default, one file with owner-only permissions) and PostgreSQL.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    RowMapping,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import make_url

from renewd.batching import batched
from renewd.errors import RenewdError
from renewd.facts import CycleState
from renewd.model import StepKey
from renewd.state.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    actions,
    alerts,
    deletions,
    meta,
    metadata,
    orders,
    runs,
    sightings,
)

BATCH = 500
LIVE_ORDER = ("pending", "charged")
OPEN_ACTION = ("pending", "sending")


class SchemaError(RenewdError):
    """The database holds a schema this renewd cannot use."""


def utcnow() -> str:
    return _stamp(datetime.now(UTC))


def _stamp(moment: datetime) -> str:
    """UTC, always with microseconds, so that stored times compare correctly as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def database_url(setting: str, base: Path) -> str:
    """A URL as given, or a path (relative to the config) meaning a SQLite file."""
    if "://" in setting:
        return setting
    return f"sqlite:///{(base / setting).resolve()}"


@dataclass
class SnapshotInfo:
    path: str
    sha256: str
    time: datetime


@dataclass
class LedgerHistory:
    """What the ledger knows about a set of mailboxes, loaded once per run (implements History)."""

    decided: set[StepKey] = field(default_factory=set)
    held: set[StepKey] = field(default_factory=set)
    paid: defaultdict[str, list[tuple[date, date]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    reminded: set[tuple[str, date]] = field(default_factory=set)
    debits: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    sightings: dict[tuple[str, date], date] = field(default_factory=dict)

    def done(self, key: StepKey) -> bool:
        return key in self.decided and key not in self.held

    def cycle(self, mailbox_id: str, cycle: date) -> CycleState:
        renewed = any(start <= cycle < end for start, end in self.paid[mailbox_id])
        return CycleState(renewed=renewed, reminded=(mailbox_id, cycle) in self.reminded)

    def unseen_debits(self, account_id: str) -> Decimal:
        return self.debits[account_id]

    def first_seen(self, mailbox_id: str, cycle: date) -> date | None:
        return self.sightings.get((mailbox_id, cycle))


class Ledger:
    """The state store. `readonly` opens an existing ledger without writing anything to it."""

    def __init__(self, url: str, readonly: bool = False) -> None:
        parsed = make_url(url)
        sqlite = parsed.get_backend_name() == "sqlite" and bool(parsed.database)
        if sqlite and not readonly:
            _create_private(Path(str(parsed.database)))
        if sqlite and readonly:
            url = f"sqlite:///file:{parsed.database}?mode=ro&uri=true"
        self.engine: Engine = create_engine(url)
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_readonly if readonly else _sqlite_pragmas)

    @classmethod
    def existing(cls, url: str) -> Ledger | None:
        """The ledger for reading, or None when nothing has created it yet."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not Path(str(parsed.database)).exists():
            return None
        ledger = cls(url, readonly=True)
        if ledger.version() is None:
            ledger.close()
            return None
        ledger.require_schema()
        return ledger

    def close(self) -> None:
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------------

    def version(self) -> int | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(meta.name):
                return None
            value = conn.execute(
                select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar()
            return int(value) if value is not None else None

    def upgrade(self) -> None:
        """Create or upgrade the schema in place; call it while holding the run lock."""
        version = self.version()
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaError(
                f"the ledger has schema version {version}, newer than this renewd knows "
                f"({SCHEMA_VERSION}); upgrade renewd, or point it at another ledger"
            )
        if version == SCHEMA_VERSION:
            return
        with self.engine.begin() as conn:
            if version is None:
                metadata.create_all(conn)
            else:
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[step](conn)
            conn.execute(meta.delete().where(meta.c.key == "schema_version"))
            conn.execute(insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))

    def require_schema(self) -> None:
        """For read-only commands: refuse a ledger that `run` has not created or upgraded."""
        version = self.version()
        if version is None:
            raise SchemaError("the ledger is empty: nothing has run yet")
        if version != SCHEMA_VERSION:
            raise SchemaError(
                f"the ledger has schema version {version}; this renewd uses {SCHEMA_VERSION}"
            )

    # -- runs -----------------------------------------------------------------------------------

    def start_run(self, day: date, snapshot: SnapshotInfo, policy_digest: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(runs).values(
                    day=day,
                    started_at=utcnow(),
                    status="running",
                    snapshot_path=snapshot.path,
                    snapshot_sha256=snapshot.sha256,
                    snapshot_time=snapshot.time.isoformat(),
                    policy_digest=policy_digest,
                    counts="{}",
                    rejected_rows="[]",
                    message="",
                )
            )
            return int(_new_id(result))

    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        rows_read: int,
        rows_rejected: int,
        counts: dict[str, int],
        rejected: Sequence[str],
        message: str,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=utcnow(),
                    rows_read=rows_read,
                    rows_rejected=rows_rejected,
                    counts=json.dumps(counts, sort_keys=True),
                    rejected_rows=json.dumps(list(rejected)),
                    message=message,
                )
            )

    def catch_up_since(self) -> date | None:
        """Catch-up starts after the latest day whose run finished without holding anything.

        Before any clean run, it starts at the first run's day, so what that run held is redone.
        """
        with self.engine.connect() as conn:
            clean = conn.execute(
                select(func.max(runs.c.day)).where(runs.c.status == "done")
            ).scalar()
            if isinstance(clean, date):
                return clean
            first = conn.execute(select(func.min(runs.c.day))).scalar()
            return first - timedelta(days=1) if isinstance(first, date) else None

    def close_crashed_runs(self) -> None:
        """Runs still `running` when the lock is free died mid-way; their rows are resumed."""
        with self.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.status == "running")
                .values(
                    status="crashed",
                    finished_at=utcnow(),
                    message="the process died; its work was resumed",
                )
            )

    def last_rows_read(self) -> int | None:
        """The shrink guard's baseline: a held run's snapshot is exactly what is in doubt."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(runs.c.rows_read)
                .where(runs.c.status == "done")
                .order_by(runs.c.id.desc())
                .limit(1)
            ).scalar()
            return int(value) if value is not None else None

    def runs(self, limit: int) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit)).mappings()
            )

    # -- history for the core -------------------------------------------------------------------

    def watched(self, moment: datetime) -> set[str]:
        """Mailboxes whose row in today's snapshot matters beyond the plan: those with open outbox
        rows (to check them against today's data) and with orders the snapshot may not show yet.
        """
        open_states = (*OPEN_ACTION, "waiting", "standby", "held")
        taken_at = _stamp(moment)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(actions.c.mailbox_id).where(actions.c.state.in_(open_states)).distinct()
            )
            found = {row.mailbox_id for row in rows}
            recent = (orders.c.state == "pending") | (
                (orders.c.state == "charged") & (orders.c.charged_at > taken_at)
            )
            found.update(
                row.mailbox_id for row in conn.execute(select(orders.c.mailbox_id).where(recent))
            )
        return found

    def history(
        self,
        mailbox_ids: Collection[str],
        account_ids: Collection[str],
        snapshot_time: datetime,
        visible_expiry: dict[str, date],
    ) -> LedgerHistory:
        """Load what the core needs about these mailboxes and accounts.

        A mailbox is renewed for a cycle when a live order's paid period covers it. An order
        reduces its account's balance (`unseen_debits`) unless the snapshot can include it: the
        snapshot shows the renewal as a later expires_on, or it was written after the charge.
        A pending order always counts: it may be charged after any snapshot.
        """
        history = LedgerHistory()
        taken_at = _stamp(snapshot_time)
        with self.engine.connect() as conn:
            for chunk in _chunks(mailbox_ids):
                self._load_actions(conn, chunk, history)
                for row in conn.execute(select(sightings).where(sightings.c.mailbox_id.in_(chunk))):
                    history.sightings[(row.mailbox_id, row.cycle)] = row.first_seen
                live = select(orders).where(
                    orders.c.mailbox_id.in_(chunk), orders.c.state.in_(LIVE_ORDER)
                )
                for order in conn.execute(live):
                    history.paid[order.mailbox_id].append((order.period_from, order.period_to))
            for chunk in _chunks(account_ids):
                live = select(orders).where(
                    orders.c.account_id.in_(chunk), orders.c.state.in_(LIVE_ORDER)
                )
                for order in conn.execute(live):
                    shown = visible_expiry.get(order.mailbox_id)
                    if shown and shown > order.cycle:
                        continue
                    if order.state == "pending" or order.charged_at > taken_at:
                        history.debits[order.account_id] += Decimal(order.amount)
        return history

    @staticmethod
    def _load_actions(conn: Any, chunk: list[str], history: LedgerHistory) -> None:
        query = select(
            actions.c.mailbox_id,
            actions.c.rule,
            actions.c.cycle,
            actions.c.step,
            actions.c.state,
            actions.c.kind,
            actions.c.anchor,
        ).where(actions.c.mailbox_id.in_(chunk))
        for row in conn.execute(query):
            key = StepKey(row.mailbox_id, row.rule, row.cycle, row.step)
            history.decided.add(key)
            if row.state == "held":
                history.held.add(key)
            if (
                row.kind == "notify"
                and row.anchor == "expiry"
                and row.state in (*OPEN_ACTION, "done", "waiting")
            ):
                history.reminded.add((row.mailbox_id, row.cycle))

    # -- writing a plan -------------------------------------------------------------------------

    def record_plan(
        self,
        run_id: int,
        steps: Iterable[PlannedStep],
        sighted: Iterable[tuple[str, date]],
        day: date,
    ) -> int:
        """Write a run's decisions in one transaction, before any effect; returns rows written.

        Each step's rows go in together: the deduct or delete first, then the rows that depend on
        its outcome (the success message waits; the failure path stands by). A step held on an
        earlier run is decided again here and its rows take the new state. Steps and sightings
        are read as they come, a batch at a time: a big day's plan is never all in memory.
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
                _cancel(conn, action_id, "held, then no longer decided on a later run")
            for sights in batched(sighted, BATCH):
                _record_sightings(conn, dict.fromkeys(sights), day)
        return written

    # -- the executor's queries -----------------------------------------------------------------

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
            _cancel(conn, action_id, reason)

    def order_for(self, mailbox_id: str, cycle: date) -> RowMapping | None:
        with self.engine.connect() as conn:
            query = select(orders).where(orders.c.mailbox_id == mailbox_id, orders.c.cycle == cycle)
            return conn.execute(query).mappings().first()

    def mark(self, action_id: int, state: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            _mark(conn, action_id, state, **values)

    def mark_many(self, changes: Sequence[tuple[int, str, dict[str, Any]]]) -> None:
        """Several outbox state changes in one transaction (one fsync on SQLite).

        Changes of the same shape go as one executemany: one statement compiled, not one per
        row. That reorders them, so a batch naming a row twice is written change by change.
        """
        ids = {action_id for action_id, _, _ in changes}
        with self.engine.begin() as conn:
            if len(ids) < len(changes):
                for action_id, state, values in changes:
                    _mark(conn, action_id, state, **values)
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
            _mark(
                conn, action_id, "done" if charged else "failed", provider_id=reference, error=error
            )
            _release(conn, action_id, "success" if charged else "fallback")

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
            _mark(conn, action_id, "sending")

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
            _mark(conn, action_id, "done" if ok else "failed", provider_id=reference, error=error)
            _release(conn, action_id, "success" if ok else "none")

    def alert_once(self, day: date, cause: str, message: str) -> bool:
        """Record an operator alert; False when one for this cause was already sent today."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(alerts.c.id).where(alerts.c.day == day, alerts.c.cause == cause)
            ).first()
            if exists is not None:
                return False
            conn.execute(
                insert(alerts).values(day=day, cause=cause, message=message, sent_at=utcnow())
            )
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

    # -- reports --------------------------------------------------------------------------------

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
    for chunk in _chunks(mailbox_ids):
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
        and step.lead["state"] == "pending"
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


def _insert_orders(conn: Any, charges: list[tuple[dict[str, Any], int]], now: str) -> None:
    """At most one order per (mailbox, cycle), ever: a second deduction in a cycle fails instead."""
    if not charges:
        return
    query = select(orders.c.mailbox_id, orders.c.cycle)
    mailbox_ids = [order["mailbox_id"] for order, _ in charges]
    exists = {tuple(row) for row in conn.execute(query.where(orders.c.mailbox_id.in_(mailbox_ids)))}
    new = []
    for order, action_id in charges:
        if (order["mailbox_id"], order["cycle"]) in exists:
            _mark(conn, action_id, "failed", error="this cycle already has a consumption order")
            _release(conn, action_id, "none")
            continue
        exists.add((order["mailbox_id"], order["cycle"]))
        new.append({**order, "state": "pending", "created_at": now, "reference": "", "error": ""})
    if new:
        conn.execute(insert(orders), [{**order, "charged_at": ""} for order in new])


def _cancel(conn: Any, action_id: int, reason: str) -> None:
    row = conn.execute(
        select(actions.c.kind, actions.c.mailbox_id, actions.c.cycle).where(
            actions.c.id == action_id
        )
    ).first()
    _mark(conn, action_id, "cancelled", error=reason)
    _release(conn, action_id, "none")
    if row is not None and row.kind == "deduct":
        pending = and_(
            orders.c.mailbox_id == row.mailbox_id,
            orders.c.cycle == row.cycle,
            orders.c.state == "pending",
        )
        conn.execute(update(orders).where(pending).values(state="cancelled", error=reason))


def _mark(conn: Any, action_id: int, state: str, **values: Any) -> None:
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


def _release(conn: Any, lead_id: int, outcome: str) -> None:
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


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None  # noqa: S101 - every table here has an integer primary key
    return int(key[0])


def _record_sightings(conn: Any, sights: Iterable[tuple[str, date]], day: date) -> None:
    """The first day each mailbox was seen expired in its cycle; later sightings change nothing."""
    sights = list(sights)
    query = select(sightings.c.mailbox_id, sightings.c.cycle)
    mailbox_ids = [mailbox_id for mailbox_id, _ in sights]
    seen = {
        tuple(row) for row in conn.execute(query.where(sightings.c.mailbox_id.in_(mailbox_ids)))
    }
    new = [
        {"mailbox_id": mailbox_id, "cycle": cycle, "first_seen": day}
        for mailbox_id, cycle in sights
        if (mailbox_id, cycle) not in seen
    ]
    if new:
        conn.execute(insert(sightings), new)


def _chunks(values: Collection[str]) -> Iterator[list[str]]:
    items = sorted(values)
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _create_private(path: Path) -> None:
    """Create the SQLite file owner-only before SQLite does it with the process umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_readonly(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=30000")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """The default rollback journal, not WAL: a read-only reader (dry-run) then creates no files."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=DELETE")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
