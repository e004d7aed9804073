"""Runs and alerts: one record per run, and at most one operator alert per cause and day."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import RowMapping, func, insert, select, update

from renewd.state.db import EPOCH_KEY, Database, new_id, utcnow
from renewd.state.schema import actions, alerts, meta, runs


@dataclass
class SnapshotInfo:
    path: str
    sha256: str
    time: datetime


class Runs(Database):
    """Run records (what each run read, did and why it held) and operator alerts."""

    def start_run(self, day: date, snapshot: SnapshotInfo, policy_digest: str) -> int:
        self.snapshot_sha256 = snapshot.sha256
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
            return int(new_id(result))

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

    def take_ledger(self) -> int:
        """Move the ledger's epoch on, as the lock's new holder: from now on no earlier holder
        (one whose lock session ended while it worked) can claim an outbox row.

        Taken again by a holder whose session ended, the epoch stays if nobody else moved it
        meanwhile: its claims are still good. The epoch this process holds the ledger at.
        """
        with self.engine.begin() as conn:
            current = conn.execute(
                select(meta.c.value).where(meta.c.key == EPOCH_KEY).with_for_update()
            ).scalar()
            if self.epoch and current == str(self.epoch):
                return self.epoch
            epoch = int(current or 0) + 1
            if current is None:
                conn.execute(insert(meta).values(key=EPOCH_KEY, value=str(epoch)))
            else:
                conn.execute(update(meta).where(meta.c.key == EPOCH_KEY).values(value=str(epoch)))
        self.epoch = epoch
        return epoch

    def close_crashed_runs(self) -> None:
        """Runs still `running` when the lock is ours stopped mid-way (killed, or cut off from
        the ledger: such a run, if alive, writes its own end over this); rows they left in flight
        go back to pending, keeping the attempt, for this run to finish."""
        with self.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.status == "running")
                .values(
                    status="crashed",
                    finished_at=utcnow(),
                    message="stopped before its end (killed, or cut off from the ledger); "
                    "a later run resumed its work",
                )
            )
            conn.execute(
                update(actions)
                .where(actions.c.state == "sending")
                .values(state="pending", updated_at=utcnow())
            )

    def planned(self, run_id: int, rows_read: int, rows_rejected: int) -> None:
        """What the run read, recorded before it acts: a run killed midway still shows it."""
        with self.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(rows_read=rows_read, rows_rejected=rows_rejected)
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
