"""Claims on outbox rows: compare-and-set changes, fenced by the epoch of the ledger's holder.

Two processes can both believe they hold the ledger for a moment: a PostgreSQL lock session
ends under one, another takes the lock, and the first notices only on its next check. So the
executor changes a row only as it saw it: a claim takes a row still pending at the attempt count
it was read at, and only while the claimant's epoch is the ledger's (`Runs.take_ledger` moves it
on); an outcome lands only on the row as it was claimed. The first process then repeats at most
what it already had in flight; the second never sends what the first still holds.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, bindparam, or_, select, tuple_, update
from sqlalchemy.types import TupleType

from renewd.core.batching import batched
from renewd.state.db import BATCH, EPOCH_KEY, OPEN_ACTION, utcnow
from renewd.state.schema import actions, meta, runs


@dataclass(frozen=True)
class Mark:
    """One change the executor makes to an outbox row.

    `sending` claims the row (it must still be pending at `attempts`, as read) and takes one
    attempt. Any other state is an outcome, which lands only while the row is at `attempts` as
    claimed; `released` (claimed but never tried) puts it back to pending and gives the attempt
    back. `count` is the run's counter the change adds to (`notify:email:sent`).
    """

    action_id: int
    state: str
    attempts: int
    values: dict[str, Any] = field(default_factory=dict)
    count: str = ""


@dataclass
class Tenure:
    """A run as the holder of the ledger: its record, and the epoch it holds the ledger at.

    `counts` are the outcomes already in the run record, which is updated in the transaction of
    every outcome: a run killed midway still shows, in `renewd runs`, what it did.
    """

    run_id: int
    epoch: int
    counts: Counter[str] = field(default_factory=Counter)

    def tally(self, conn: Any, keys: Iterable[str]) -> None:
        added = Counter(key for key in keys if key)
        if not added:
            return
        counts = self.counts + added
        conn.execute(_TALLY, {"run": self.run_id, "counts": json.dumps(counts, sort_keys=True)})
        self.counts = counts


# Built once: made anew for every commit of the executor, it cost more than it ran.
_TALLY = update(runs).where(runs.c.id == bindparam("run")).values(counts=bindparam("counts"))


def fenced(conn: Any, tenure: Tenure) -> bool:
    """Another process has taken the ledger since this one did. Read FOR SHARE on PostgreSQL:
    a new holder's change of the epoch waits for this transaction, so no claim slips in beside it.
    """
    query = select(meta.c.value).where(meta.c.key == EPOCH_KEY).with_for_update(read=True)
    return bool(conn.execute(query).scalar() != str(tenure.epoch))


def claim(conn: Any, marks: Sequence[Mark]) -> set[int]:
    """Take the rows still pending at the attempt counts they were read at; the ids taken.

    One statement, built once, for every batch: only its parameters change (building the
    statement anew with the values in it cost more CPU than running it)."""
    taken: set[int] = set()
    now = utcnow()
    for batch in batched(marks, BATCH):
        ids = [m.action_id for m in batch]
        read = [(m.action_id, m.attempts) for m in batch]
        taken.update(conn.execute(_CLAIM, {"ids": ids, "read": read, "now": now}).scalars())
    return taken


_CLAIM = (
    update(actions)
    .where(
        actions.c.id.in_(bindparam("ids", expanding=True)),  # by key, not by the state index
        tuple_(actions.c.id, actions.c.attempts).in_(
            bindparam("read", expanding=True, type_=TupleType(Integer(), Integer()))
        ),
        actions.c.state == "pending",
    )
    .values(state="sending", attempts=actions.c.attempts + 1, updated_at=bindparam("now"))
    .returning(actions.c.id)
)


def record(conn: Any, marks: Sequence[Mark]) -> int:
    """Outcomes, each only while its row is at the attempt count it was claimed at; how many
    landed. Changes of one shape go as one executemany: one statement compiled, not one per row
    (the executor never names a row twice in one batch)."""
    now = utcnow()
    shapes: defaultdict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for mark in marks:
        released = mark.state == "released"
        row = {"state": "pending" if released else mark.state, "updated_at": now}
        key = {"_id": mark.action_id, "_attempts": mark.attempts}
        shape = ("released" if released else "outcome", *sorted(mark.values))
        shapes[shape].append({**mark.values, **row, **key})
    landed = 0
    for shape, rows in shapes.items():
        statement = _RELEASE if shape[0] == "released" else _OUTCOME
        landed += conn.execute(statement, rows).rowcount
    return landed


_AT_CLAIM = update(actions).where(
    actions.c.id == bindparam("_id"), actions.c.attempts == bindparam("_attempts")
)
# A row still claimed, or put back to pending by a new holder of the ledger and not claimed yet
# (`Runs.take_ledger`): what this process did is still true, and saves the new holder a repeat.
_OUTCOME = _AT_CLAIM.where(or_(*(actions.c.state == state for state in OPEN_ACTION)))
_RELEASE = _AT_CLAIM.where(actions.c.state == "sending").values(attempts=actions.c.attempts - 1)
