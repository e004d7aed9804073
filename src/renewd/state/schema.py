"""The ledger's tables (SQLAlchemy Core, portable between SQLite and PostgreSQL) and their versions.

Money is stored as decimal text: SQLite has no exact decimal type, and text round-trips a
`Decimal` exactly on every backend. Times are stored as UTC ISO strings for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.schema import AddConstraint

# Version 4: orders per charge attempt (the auto-renew retry); 5: delivery receipts.
SCHEMA_VERSION = 5

LIVE_ORDER = ("pending", "charged", "free")  # orders that renew: a free one has no charge

metadata = MetaData()

meta = Table(
    "renewd_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False, index=True),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),
    # running | done | held | failed | lost | crashed: only `done` runs advance the catch-up window
    Column("status", String(16), nullable=False),
    Column("snapshot_path", Text, nullable=False),
    Column("snapshot_sha256", String(64), nullable=False),
    Column("snapshot_time", String(32), nullable=False),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("rows_rejected", Integer, nullable=False, default=0),
    Column("policy_digest", String(32), nullable=False),
    Column("counts", Text, nullable=False, default="{}"),
    Column("rejected_rows", Text, nullable=False, default="[]"),
    Column("message", Text, nullable=False, default=""),
)

# Every decided step (taken, superseded, held, standing by) and the outbox of its effects.
actions = Table(
    "actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("day", Date, nullable=False),
    Column("mailbox_id", String(128), nullable=False),
    Column("account_id", String(128), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("cycle", Date, nullable=False),
    Column("step", Integer, nullable=False),
    Column("anchor", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(16), nullable=False, default=""),
    Column("template", String(64), nullable=False, default=""),
    Column("amount", String(32), nullable=False, default=""),
    Column("currency", String(3), nullable=False, default=""),
    Column("superseded_by", String(64), nullable=False, default=""),
    # pending | sending | done | failed | held | superseded | waiting | standby | cancelled
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("provider_id", Text, nullable=False, default=""),
    Column("error", Text, nullable=False, default=""),
    Column("payload", Text, nullable=False, default="{}"),
    # the deduct or delete this row waits for (notify: `waiting`) or stands by for (`standby`)
    Column("depends_on", Integer, index=True),
    Column("not_before", String(32), nullable=False, default=""),
    Column("updated_at", String(32), nullable=False),
    # Version 5: what the last receipt said about a message that left (core/delivery.py): its
    # delivery state, the reporter's code (30003, 5.1.1) and diagnostic, and when it came
    Column("delivery", String(24), nullable=False, default=""),
    Column("delivery_code", String(16), nullable=False, default=""),
    Column("delivery_detail", Text, nullable=False, default=""),
    Column("delivery_at", String(32), nullable=False, default=""),
    UniqueConstraint(
        "mailbox_id", "rule", "cycle", "step", "kind", "channel", name="uq_action_step"
    ),
)

# Version 5: Twilio's status callbacks find their message by its MessageSid. Partial, on SMS
# rows only: other rows' provider ids (a billing peer's reference) have no length limit.
SMS_CHANNEL = actions.c.channel == "sms"
sms_provider_ids = Index(
    "ix_actions_sms_provider_id",
    actions.c.provider_id,
    sqlite_where=SMS_CHANNEL,
    postgresql_where=SMS_CHANNEL,
)

# Consumption orders: the only invoiceable records. One per charge attempt (version 4: a retry
# of a declined or refused charge is a new order with its own idempotency key), and at most one
# live (pending, charged or free) per (mailbox, cycle), ever: `uq_order_live`.
orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("mailbox_id", String(128), nullable=False),
    Column("account_id", String(128), nullable=False, index=True),
    Column("cycle", Date, nullable=False),
    Column("amount", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period_from", Date, nullable=False),
    Column("period_to", Date, nullable=False),
    # pending | charged | declined | failed | cancelled, or free: a zero fee, renewed without a
    # charge, never billed or invoiced
    Column("state", String(16), nullable=False),
    Column("backend", String(32), nullable=False),
    Column("reference", Text, nullable=False, default=""),
    Column("error", Text, nullable=False, default=""),
    Column("created_at", String(32), nullable=False),
    Column("charged_at", String(32), nullable=False, default=""),
    # Version 3: the day of the month the paid period is anchored on, and the day renewd decided
    # the renewal (the next cycle begins then if that is after period_from)
    Column("anchor_day", Integer),
    Column("renewed_on", Date),
    # Version 4: the cycle's charge attempts are numbered from 1, each with its own key
    Column("attempt", Integer, nullable=False, default=1, server_default="1"),
    UniqueConstraint("mailbox_id", "cycle", "attempt", name="uq_order_attempt"),
)

# The database itself refuses a second renewal of a cycle, whatever a process believes: a partial
# unique index (SQLite and PostgreSQL both have them) over the orders that renew.
_LIVE = text("state IN (" + ", ".join(f"'{state}'" for state in LIVE_ORDER) + ")")
live_orders = Index(
    "uq_order_live",
    orders.c.mailbox_id,
    orders.c.cycle,
    unique=True,
    sqlite_where=_LIVE,
    postgresql_where=_LIVE,
)

deletions = Table(
    "deletions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mailbox_id", String(128), nullable=False),
    Column("cycle", Date, nullable=False),
    # requested | done | failed
    Column("state", String(16), nullable=False),
    Column("backend", String(32), nullable=False),
    Column("reference", Text, nullable=False, default=""),
    Column("error", Text, nullable=False, default=""),
    Column("requested_at", String(32), nullable=False),
    Column("done_at", String(32), nullable=False, default=""),
    UniqueConstraint("mailbox_id", "cycle", name="uq_deletion_cycle"),
)

# The first day renewd saw a mailbox expired and unrenewed in a cycle, and the SHA-256 of the
# snapshot it was seen in (version 3; "" before): the deletion guard.
sightings = Table(
    "sightings",
    metadata,
    Column("mailbox_id", String(128), primary_key=True),
    Column("cycle", Date, primary_key=True),
    Column("first_seen", Date, nullable=False),
    Column("snapshot_sha256", String(64), nullable=False, default=""),
)

# Version 2: operator alerts, at most one per cause and day.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    Column("cause", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("sent_at", String(32), nullable=False),
    UniqueConstraint("day", "cause", name="uq_alert_cause_day"),
)


# Version 3: the day renewd first saw a cycle that was renewed elsewhere, after it had known the
# mailbox at an earlier cycle: that cycle's steps on or before it are never sent.
cycle_starts = Table(
    "cycle_starts",
    metadata,
    Column("mailbox_id", String(128), primary_key=True),
    Column("cycle", Date, primary_key=True),
    Column("began", Date, nullable=False),
)


def _add_alerts(conn: Connection) -> None:
    alerts.create(conn)


def _version_3(conn: Connection) -> None:
    """Add what version 3 has and the ledger lacks (a ledger is upgraded in one transaction, but
    one restored from a partial copy may have some of it): the cycle model's anchor day and
    renewal day on orders, the cycle starts, and the snapshot each sighting was made in."""
    present = {column["name"] for column in inspect(conn).get_columns("orders")}
    for name, kind in (("anchor_day", "INTEGER"), ("renewed_on", "DATE")):
        if name not in present:
            conn.execute(text(f"ALTER TABLE orders ADD COLUMN {name} {kind}"))
    cycle_starts.create(conn, checkfirst=True)
    if "snapshot_sha256" not in {c["name"] for c in inspect(conn).get_columns("sightings")}:
        conn.execute(
            text("ALTER TABLE sightings ADD COLUMN snapshot_sha256 VARCHAR(64) NOT NULL DEFAULT ''")
        )


def _version_4(conn: Connection) -> None:
    """Orders per charge attempt: `uq_order_cycle` (one order per cycle) gives way to one per
    attempt and at most one live per cycle; orders made so far are each cycle's first attempt.

    SQLite cannot drop a constraint, so there the table is rebuilt (in the upgrade's one
    transaction); PostgreSQL alters it. Either way only what is missing is done.
    """
    found = inspect(conn)
    columns = [c["name"] for c in found.get_columns("orders")]
    uniques = {u["name"] for u in found.get_unique_constraints("orders")}
    indexes = {i["name"] for i in found.get_indexes("orders")}
    if "attempt" in columns and "uq_order_cycle" not in uniques and "uq_order_live" in indexes:
        return
    if conn.dialect.name == "sqlite":
        _rebuild_orders(conn, columns)
        return
    if "uq_order_cycle" in uniques:
        # by name: a UniqueConstraint built over `orders.c` would attach itself to the shared
        # `orders` table, and every ledger created later in the process would carry it
        conn.execute(text("ALTER TABLE orders DROP CONSTRAINT uq_order_cycle"))
    if "attempt" not in columns:
        conn.execute(text("ALTER TABLE orders ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1"))
    if "uq_order_attempt" not in uniques:
        attempt = next(c for c in orders.constraints if c.name == "uq_order_attempt")
        conn.execute(AddConstraint(attempt))
    live_orders.create(conn, checkfirst=True)


def _rebuild_orders(conn: Connection, columns: list[str]) -> None:
    """SQLite's way to change a table's constraints: the new table beside the old, rows copied
    (each a first attempt unless it says otherwise), the old one dropped."""
    conn.execute(text("ALTER TABLE orders RENAME TO orders_old"))
    for index in inspect(conn).get_indexes("orders_old"):  # their names are the new table's
        conn.execute(text(f'DROP INDEX "{index["name"]}"'))
    orders.create(conn)
    kept = ", ".join(f'"{name}"' for name in columns if name in orders.c)
    conn.execute(text(f"INSERT INTO orders ({kept}) SELECT {kept} FROM orders_old"))  # noqa: S608 - names from the schema
    conn.execute(text("DROP TABLE orders_old"))


def _version_5(conn: Connection) -> None:
    """Delivery receipts: the delivery columns on outbox rows, and the index by MessageSid
    (what is there already, from a partial copy, is kept)."""
    present = {column["name"] for column in inspect(conn).get_columns("actions")}
    for name, kind in (
        ("delivery", "VARCHAR(24)"),
        ("delivery_code", "VARCHAR(16)"),
        ("delivery_detail", "TEXT"),
        ("delivery_at", "VARCHAR(32)"),
    ):
        if name not in present:
            conn.execute(text(f"ALTER TABLE actions ADD COLUMN {name} {kind} NOT NULL DEFAULT ''"))
    sms_provider_ids.create(conn, checkfirst=True)


# How to bring a ledger of version N-1 to version N, in place.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _add_alerts,
    3: _version_3,
    4: _version_4,
    5: _version_5,
}
