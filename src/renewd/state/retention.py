"""Retention: forgetting outbox rows and run records older than `retention_days`, and nothing that
is still needed.

What may go, and why nothing else does:

- **Outbox rows** (`actions`) go a whole cycle at a time: the rows of one mailbox's cycle (one
  anchor, one expiry date) are pruned together once every one of them was decided before the
  cutoff and is final (done, failed, superseded, cancelled), and no step of that cycle can come
  due again: its date plus the policy's latest step plus `catch_up_days` is past. The once-per-step
  rule, the `reminded` and `renewed` facts and the deletion guard read only cycles that can still
  come due, so a cycle's rows are never half gone while it matters. A row some kept row depends on
  stays with it. Each mailbox's latest expiry cycle stays (a later cycle is told apart from a
  renewal made elsewhere by it) unless renewd deleted the mailbox.
- **Run records** go once no outbox row refers to them, except those the next run reads: the
  latest run, the latest run that held nothing (catch-up and the shrink guard start there) and,
  before any such run, the first one; a run still `running` always stays.
- **Sightings** (the first day a mailbox was seen expired: the deletion guard) and **cycle starts**
  (the day a cycle renewed elsewhere was first seen) of settled cycles, seen before the cutoff,
  with no open row.
- **Alerts** of days before the cutoff (they only stop a second alert of one cause on one day).
- **Consumption orders** are accounting records and **deletions** the record of a destructive
  act: never pruned.

Work is done one old run at a time, each in its own transaction, through the index on
`actions.run_id`: a daily prune costs about one day of rows, never a scan of the whole outbox,
and a writer on the ledger is never blocked for long. Portable SQL only (SQLite, PostgreSQL).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, delete, exists, select

from renewd.state.db import BATCH, Database, chunks
from renewd.state.schema import actions, alerts, cycle_starts, runs, sightings

OPEN = (
    "pending",
    "sending",
    "waiting",
    "standby",
    "held",
)  # rows the executor or a run still needs


@dataclass(frozen=True)
class Window:
    """What is old enough to go: decided before `cutoff`, in a cycle before `settled`."""

    cutoff: date
    settled: date

    @classmethod
    def of(cls, today: date, retention_days: int, reach_days: int) -> Window:
        """`reach_days`: the policy's latest step after a cycle's date plus `catch_up_days`,
        the furthest a run can look back into a cycle."""
        return cls(today - timedelta(days=retention_days), today - timedelta(days=reach_days))


@dataclass
class Pruned:
    actions: int = 0
    runs: int = 0
    sightings: int = 0
    cycle_starts: int = 0
    alerts: int = 0
    more: bool = False  # `max_runs` stopped it: older runs remain for the next prune

    def __bool__(self) -> bool:
        return any((self.actions, self.runs, self.sightings, self.cycle_starts, self.alerts))

    def __str__(self) -> str:
        parts = [
            f"{self.actions} outbox rows",
            f"{self.runs} run records",
            f"{self.sightings} sightings",
            f"{self.cycle_starts} cycle starts",
            f"{self.alerts} alerts",
        ]
        return ", ".join(parts) + (" (more remain; the next prune goes on)" if self.more else "")


def prune(database: Database, window: Window, max_runs: int | None = None) -> Pruned:
    """Forget what `window` allows (see the module's docstring); at most `max_runs` old runs'
    rows this time (None: all of them)."""
    pruned = Pruned()
    with database.engine.connect() as conn:
        old = _old_runs(conn, window.cutoff)
    for count, run_id in enumerate(sorted(old)):
        if max_runs is not None and count >= max_runs:
            pruned.more = True
            break
        with database.engine.begin() as conn:
            pruned.actions += _prune_run_rows(conn, run_id, old, window.settled)
            pruned.runs += _forget_run(conn, run_id)
    with database.engine.begin() as conn:
        pruned.sightings = _prune_firsts(conn, sightings, sightings.c.first_seen, window)
        pruned.cycle_starts = _prune_firsts(conn, cycle_starts, cycle_starts.c.began, window)
        gone = conn.execute(delete(alerts).where(alerts.c.day < window.cutoff))
        pruned.alerts = gone.rowcount
    return pruned


def _old_runs(conn: Connection, cutoff: date) -> set[int]:
    """Runs of days before the cutoff, less those a run reads back (see the docstring)."""
    old = set(
        conn.execute(
            select(runs.c.id).where(runs.c.day < cutoff, runs.c.status != "running")
        ).scalars()
    )
    done = runs.c.status == "done"
    kept = {
        _first(conn, select(runs.c.id).order_by(runs.c.id.desc())),  # the latest run
        _first(conn, select(runs.c.id).where(done).order_by(runs.c.id.desc())),  # shrink guard
        _first(conn, select(runs.c.id).where(done).order_by(runs.c.day.desc(), runs.c.id.desc())),
    }
    if None in kept:  # no clean run yet: catch-up starts at the first run's day
        kept.add(_first(conn, select(runs.c.id).order_by(runs.c.day, runs.c.id)))
    return old - kept


def _first(conn: Connection, query: Any) -> int | None:
    value = conn.execute(query.limit(1)).scalar()
    return None if value is None else int(value)


def _prune_run_rows(conn: Connection, run_id: int, old: set[int], settled: date) -> int:
    """Delete the cycles of this run's mailboxes that may go; how many rows went."""
    mailboxes = set(
        conn.execute(select(actions.c.mailbox_id).where(actions.c.run_id == run_id)).scalars()
    )
    gone = 0
    for chunk in chunks(mailboxes):
        query = select(
            actions.c.id,
            actions.c.mailbox_id,
            actions.c.anchor,
            actions.c.cycle,
            actions.c.state,
            actions.c.run_id,
            actions.c.depends_on,
            actions.c.kind,
        ).where(actions.c.mailbox_id.in_(chunk))
        ids = sorted(_prunable(conn.execute(query).all(), old, settled))
        for start in range(0, len(ids), BATCH):
            conn.execute(delete(actions).where(actions.c.id.in_(ids[start : start + BATCH])))
        gone += len(ids)
    return gone


def _prunable(rows: Iterable[Any], old: set[int], settled: date) -> set[int]:
    """The ids of whole cycles that may go; a cycle some kept row depends on stays."""
    cycles: defaultdict[tuple[str, str, date], list[Any]] = defaultdict(list)
    cycle_of: dict[int, tuple[str, str, date]] = {}
    for row in rows:
        key = (row.mailbox_id, row.anchor, row.cycle)
        cycles[key].append(row)
        cycle_of[row.id] = key
    latest = _latest_cycles(cycles)
    going = {
        key
        for key, members in cycles.items()
        if key[2] < settled
        and key not in latest
        and all(r.run_id in old and r.state not in OPEN for r in members)
    }
    while True:
        needed = {
            cycle_of[row.depends_on]
            for key, members in cycles.items()
            if key not in going
            for row in members
            if row.depends_on in cycle_of and cycle_of[row.depends_on] in going
        }
        if not needed:
            return {row.id for key in going for row in cycles[key]}
        going -= needed


def _latest_cycles(cycles: dict[tuple[str, str, date], list[Any]]) -> set[tuple[str, str, date]]:
    """Each mailbox's latest expiry cycle, unless renewd deleted the mailbox in it: a cycle that
    shows up later is told apart from a renewal made elsewhere by an earlier cycle renewd knows
    (`LedgerHistory.cycle`), so the latest one is kept for as long as the mailbox may return."""
    latest: dict[str, tuple[str, str, date]] = {}
    for key in cycles:
        if key[1] == "expiry" and (key[0] not in latest or key[2] > latest[key[0]][2]):
            latest[key[0]] = key
    return {
        key
        for key in latest.values()
        if not any(r.kind == "delete" and r.state == "done" for r in cycles[key])
    }


def _forget_run(conn: Connection, run_id: int) -> int:
    """Delete the run record once no outbox row refers to it."""
    if conn.execute(select(exists().where(actions.c.run_id == run_id))).scalar():
        return 0
    return int(conn.execute(delete(runs).where(runs.c.id == run_id)).rowcount)


def _prune_firsts(conn: Connection, table: Any, first: Any, window: Window) -> int:
    """Sightings or cycle starts of settled cycles, first seen before the cutoff, with no open
    outbox row in their cycle."""
    open_row = exists().where(
        actions.c.mailbox_id == table.c.mailbox_id,
        actions.c.cycle == table.c.cycle,
        actions.c.state.in_(OPEN),
    )
    statement = delete(table).where(
        first < window.cutoff, table.c.cycle < window.settled, ~open_row
    )
    return int(conn.execute(statement).rowcount)
