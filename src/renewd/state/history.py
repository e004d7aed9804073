"""What earlier runs did, as the core asks for it: steps done, cycles paid, debits, sightings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from renewd.core.cycles import CycleState
from renewd.core.delivery import did_not_arrive
from renewd.core.model import StepKey
from renewd.state.db import OPEN_ACTION, Database, chunks, stamp
from renewd.state.schema import LIVE_ORDER, actions, cycle_starts, orders, sightings


@dataclass
class LedgerHistory:
    """What the ledger knows about a set of mailboxes, loaded once per run (implements History).

    `renewals`: the cycles renewd renewed into, with their anchor day and the day they began;
    `known`: per mailbox, the cycles renewd decided steps in; `starts`: the day each cycle
    renewed elsewhere was first seen. A cycle renewd did not renew into, of a mailbox it knew at
    an earlier cycle, was renewed elsewhere: it began `today` unless it was seen before.
    `last_message`: per mailbox, cycle and channel, the last message that left or failed for
    good (its outbox id) and whether it did not arrive.
    """

    today: date
    decided: set[StepKey] = field(default_factory=set)
    held: set[StepKey] = field(default_factory=set)
    paid: defaultdict[str, list[tuple[date, date]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    reminded: set[tuple[str, date]] = field(default_factory=set)
    debits: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    sightings: dict[tuple[str, date], date] = field(default_factory=dict)
    renewals: dict[tuple[str, date], tuple[int | None, date]] = field(default_factory=dict)
    known: defaultdict[str, set[date]] = field(default_factory=lambda: defaultdict(set))
    starts: dict[tuple[str, date], date] = field(default_factory=dict)
    new_starts: dict[tuple[str, date], date] = field(default_factory=dict)
    last_message: dict[tuple[str, date, str], tuple[int, bool]] = field(default_factory=dict)

    def done(self, key: StepKey) -> bool:
        return key in self.decided and key not in self.held

    def cycle(self, mailbox_id: str, cycle: date) -> CycleState:
        key = (mailbox_id, cycle)
        renewed = any(start <= cycle < end for start, end in self.paid[mailbox_id])
        anchor_day, began = self.renewals.get(key, (None, None))
        began = began or self.starts.get(key)
        known = self.known[mailbox_id]
        if began is None and cycle not in known and any(seen < cycle for seen in known):
            began = self.new_starts.setdefault(key, self.today)
        undelivered = frozenset(
            channel
            for channel in ("email", "sms")
            if self.last_message.get((mailbox_id, cycle, channel), (0, False))[1]
        )
        return CycleState(renewed, key in self.reminded, anchor_day, began, undelivered)

    def began_now(self) -> Mapping[tuple[str, date], date]:
        return self.new_starts

    def unseen_debits(self, account_id: str) -> Decimal:
        return self.debits[account_id]

    def first_seen(self, mailbox_id: str, cycle: date) -> date | None:
        return self.sightings.get((mailbox_id, cycle))


class Histories(Database):
    """What the core needs to know of earlier runs, read for the mailboxes of one part of a day."""

    def watched(self, moment: datetime) -> set[str]:
        """Mailboxes whose row in today's snapshot matters beyond the plan: those with open outbox
        rows (to check them against today's data) and with orders the snapshot may not show yet.
        """
        open_states = (*OPEN_ACTION, "waiting", "standby", "held")
        taken_at = stamp(moment)
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
        visible_expiry: Mapping[str, date],
        today: date,
    ) -> LedgerHistory:
        """Load what the core needs about these mailboxes and accounts.

        A mailbox is renewed for a cycle when a live order's paid period covers it. An order
        reduces its account's balance (`unseen_debits`) unless the snapshot can include it: the
        snapshot shows the renewal as a later expires_on, or it was written after the charge.
        A pending order always counts: it may be charged after any snapshot.
        """
        history = LedgerHistory(today)
        taken_at = stamp(snapshot_time)
        with self.engine.connect() as conn:
            for chunk in chunks(mailbox_ids):
                self._load_actions(conn, chunk, history)
                self._load_cycles(conn, chunk, history)
            for chunk in chunks(account_ids):
                live = select(orders).where(
                    orders.c.account_id.in_(chunk), orders.c.state.in_(LIVE_ORDER)
                )
                for order in conn.execute(live):
                    if order.state == "free":
                        continue
                    shown = visible_expiry.get(order.mailbox_id)
                    if shown and shown > order.cycle:
                        continue
                    if order.state == "pending" or order.charged_at > taken_at:
                        history.debits[order.account_id] += Decimal(order.amount)
        return history

    def _load_cycles(self, conn: Any, chunk: list[str], history: LedgerHistory) -> None:
        """Sightings (not those made in this very snapshot), renewals and cycle starts."""
        for row in conn.execute(select(sightings).where(sightings.c.mailbox_id.in_(chunk))):
            if self.snapshot_sha256 and row.snapshot_sha256 == self.snapshot_sha256:
                continue  # seen in this very file: a run of another --date proves nothing
            history.sightings[(row.mailbox_id, row.cycle)] = row.first_seen
        live = select(orders).where(orders.c.mailbox_id.in_(chunk), orders.c.state.in_(LIVE_ORDER))
        for order in conn.execute(live):
            history.paid[order.mailbox_id].append((order.period_from, order.period_to))
            began = max(order.period_from, order.renewed_on or order.period_from)
            history.renewals[order.mailbox_id, order.period_to] = (order.anchor_day, began)
        started = select(cycle_starts).where(cycle_starts.c.mailbox_id.in_(chunk))
        for row in conn.execute(started):
            history.starts[row.mailbox_id, row.cycle] = row.began

    @staticmethod
    def _load_actions(conn: Any, chunk: list[str], history: LedgerHistory) -> None:
        query = select(
            actions.c.id,
            actions.c.mailbox_id,
            actions.c.rule,
            actions.c.cycle,
            actions.c.step,
            actions.c.state,
            actions.c.kind,
            actions.c.anchor,
            actions.c.channel,
            actions.c.delivery,
        ).where(actions.c.mailbox_id.in_(chunk))
        for row in conn.execute(query):
            key = StepKey(row.mailbox_id, row.rule, row.cycle, row.step)
            history.decided.add(key)
            if row.anchor == "expiry":
                history.known[row.mailbox_id].add(row.cycle)
            if row.state == "held":
                history.held.add(key)
            if row.kind == "notify" and row.anchor == "expiry":
                if row.state in (*OPEN_ACTION, "done", "waiting"):
                    history.reminded.add((row.mailbox_id, row.cycle))
                if row.state in ("done", "failed"):
                    _last_message(history, row)


def _last_message(history: LedgerHistory, row: Any) -> None:
    """Keep the latest message per mailbox, cycle and channel (outbox ids grow as steps are
    decided), and whether it did not arrive: the `email_bounced`, `sms_undelivered` facts."""
    key = (row.mailbox_id, row.cycle, row.channel)
    if row.id > history.last_message.get(key, (0, False))[0]:
        history.last_message[key] = (row.id, did_not_arrive(row.state, row.delivery))
