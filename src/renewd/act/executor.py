"""The executor: applies the outbox. Charges, then deletions, then messages; each outcome recorded.

Every effect runs from a ledger row that was written before it and claimed (a compare-and-set,
fenced by the ledger's epoch: `state/claims.py`) before it is tried, and records its outcome
after. A crash in between leaves the row open and the next run finishes it: charges and
deletions carry an idempotency key, so repeating them is safe; a message sent but not yet
recorded may be sent twice, at most two per sender slot (see `_slot`), after a crash or by a
run that lost the ledger to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping

from renewd.act.backends.base import Billing, Charge, Provisioning, Removal, TransientError
from renewd.act.faults import crash_point
from renewd.act.pages import PAGE, Marks, Pending
from renewd.core.batching import batched
from renewd.delivery.receipts import message_key
from renewd.delivery.senders.base import Outbound, Result, Sender, SendWindow, Status
from renewd.delivery.templating import Renderer
from renewd.state.claims import Mark, Tenure
from renewd.state.ledger import Ledger
from renewd.state.lock import LockWatch
from renewd.state.outbox import Settled

MAX_ATTEMPTS = 8


Job = tuple[RowMapping, Outbound]  # an outbox row, and its message rendered


class Executor:
    def __init__(
        self,
        ledger: Ledger,
        billing: Billing,
        provisioning: Provisioning,
        senders: dict[str, Sender],
        renderer: Renderer,
        windows: dict[str, SendWindow | None] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.ledger = ledger
        self.billing = billing
        self.provisioning = provisioning
        self.senders = senders
        self.renderer = renderer
        self.windows = windows or {}
        self.now = now or datetime.now(UTC)
        self.counts: Counter[str] = Counter()
        self.skip: set[int] = set()
        self.tenure = Tenure(0, 0)
        self.marks = Marks(ledger, self.tenure)
        self.stopping = threading.Event()
        self.progress: Callable[[], None] = _nothing
        self.watch: LockWatch | None = None
        self.stopped: dict[str, str] = {}
        self.lost = ""

    def run(self, tenure: Tenure, skip: set[int] | None = None) -> Counter[str]:
        """Work through every open row of the outbox, this run's and any left by an earlier one,
        except those `skip` names (their mailbox's row is unusable today, or the run holds them).
        """
        self.tenure = tenure
        self.skip = skip or set()
        asyncio.run(self._all())
        return self.counts

    async def _all(self) -> None:
        try:
            await self._charges()
            await self._deletions()
            await self._messages()
        finally:
            for backend in (self.billing, self.provisioning):
                with contextlib.suppress(Exception):  # closing a pool: nothing left to lose
                    await backend.close()

    def _open(self, kind: str) -> Pending:
        return Pending(self.ledger, kind, None, self.skip)

    def _halted(self, name: str) -> bool:
        return name in self.stopped or self.stopping.is_set()

    def _fenced(self) -> None:
        """A claim found the ledger taken by another renewd: stop after what is in flight."""
        if not self.lost:
            self.lost = (
                "another renewd took the ledger while this run worked (its lock session had "
                "ended); stopped after the effects in flight"
            )
        if self.watch is not None:
            self.watch.cut_off(self.lost)
        self.stopping.set()

    def _unavailable(self, name: str, action: RowMapping, exc: TransientError) -> Mark:
        """The effect stays open for the next run; the backend rests for this one, since the next
        request would fare no better (down, slow, redirecting, lying), and the operator is told.
        """
        self.stopped[name] = str(exc)
        kind = action["kind"]
        self.counts[f"{kind}:retry"] += 1
        return Mark(
            action["id"], "pending", action["attempts"] + 1, {"error": str(exc)}, f"{kind}:retry"
        )

    async def _charges(self) -> None:
        """Each charge is claimed in the transaction that records the one before's outcome."""
        settled: Settled | None = None  # the last charge's outcome, not committed yet
        try:
            for action, order in self._chargeable():
                landed, claimed = self.ledger.settle_and_claim(settled, action, self.tenure)
                self._count(settled, landed)
                settled = None
                if claimed is None:
                    self._fenced()
                if not claimed:
                    continue
                settled = await self._charge(action, order)
        finally:
            if settled is not None:
                self._count(settled, self.ledger.settle_and_claim(settled, None, self.tenure)[0])

    def _chargeable(self) -> Iterator[tuple[RowMapping, RowMapping]]:
        """Open deductions whose order is still to be charged, until billing or the run stops."""
        for action in self._open("deduct"):
            self.progress()
            if self._halted("billing"):
                return
            order = self.ledger.order_for(action["mailbox_id"], action["cycle"])
            if order is not None and order["state"] == "pending":
                yield action, order

    async def _charge(self, action: RowMapping, order: RowMapping) -> Settled | None:
        """Ask billing for a claimed charge: its outcome to record, or None once recorded (the
        backend is unavailable: the charge stays open for the next run)."""
        charge = Charge(
            idempotency_key=order["idempotency_key"],
            account_id=order["account_id"],
            mailbox_id=order["mailbox_id"],
            amount=Decimal(order["amount"]),
            currency=order["currency"],
            period_from=order["period_from"],
            period_to=order["period_to"],
        )
        try:
            outcome = await self.billing.charge(charge)
        except TransientError as exc:
            self.ledger.mark_many([self._unavailable("billing", action, exc)], self.tenure)
            return None
        crash_point("after-charge")
        # A refusal for good (400, 422) is not renewal: tell the customer, as for a decline, so
        # they can renew by hand in time.
        state = outcome.status if outcome.status in ("charged", "declined") else "failed"
        error = outcome.error or ("declined by billing" if state == "declined" else "")
        mark = Mark(
            action["id"],
            "done" if state == "charged" else "failed",
            action["attempts"] + 1,
            {"provider_id": outcome.reference, "error": error},
            f"deduct:{state}",
        )
        return Settled(mark, order["id"], state)

    def _count(self, settled: Settled | None, landed: bool) -> None:
        if settled is not None and landed:
            self.counts[f"deduct:{settled.state}"] += 1

    async def _deletions(self) -> None:
        for action in self._open("delete"):
            self.progress()
            if self._halted("provisioning"):
                return
            mailbox_id, cycle = action["mailbox_id"], action["cycle"]
            claimed = self.ledger.claim_deletion(action, self.provisioning.name, self.tenure)
            if not claimed:
                if claimed is None:
                    self._fenced()
                continue
            key = f"renewd:delete:{mailbox_id}:{cycle.isoformat()}"
            removal = Removal(key, action["account_id"], mailbox_id, cycle)
            try:
                outcome = await self.provisioning.delete(removal)
            except TransientError as exc:
                mark = self._unavailable("provisioning", action, exc)
                self.ledger.mark_many([mark], self.tenure)
                continue
            crash_point("after-delete")
            ok = outcome.status == "deleted"
            done = "done" if ok else "failed"
            mark = Mark(
                action["id"],
                done,
                action["attempts"] + 1,
                {"provider_id": outcome.reference, "error": outcome.error},
                f"delete:{done}",
            )
            if self.ledger.deletion_settled(mark, mailbox_id, cycle, self.tenure):
                self.counts[f"delete:{done}"] += 1

    async def _messages(self) -> None:
        if self.stopping.is_set():
            return
        channels = {
            name: Pending(self.ledger, "notify", name, self.skip)
            for name in self.ledger.open_channels()
        }
        self.marks = Marks(self.ledger, self.tenure)
        writer = asyncio.create_task(self.marks.write())
        try:
            async with asyncio.TaskGroup() as group:  # one failing channel stops the others
                for name, rows in channels.items():
                    group.create_task(self._channel(name, rows))
        except BaseExceptionGroup as failed:
            raise _first(failed) from None
        finally:
            writer.cancel()
            for sender in self.senders.values():
                await sender.close()

    async def _channel(self, channel: str, rows: Pending) -> None:
        """Send one channel's messages with as many at a time as its sender allows."""
        sender = self.senders.get(channel)
        if sender is None:  # nothing could ever send these: say so once, keep nothing open
            error = {"error": f"no sender is configured for {channel}"}
            for page in batched(rows, PAGE):
                count = f"notify:{channel}:no-sender"
                self.counts[count] += len(page)
                await self.marks.commit(
                    [Mark(a["id"], "failed", a["attempts"], error, count) for a in page]
                )
            return
        window = self.windows.get(channel)
        if window is not None and not window.open_at(self.now):
            self.counts[f"notify:{channel}:deferred"] += sum(1 for _ in rows)
            return

        slots = max(1, getattr(sender, "concurrency", 1))
        # The first message goes alone: bad credentials then cost one attempt, not one per slot.
        await self._slot(sender, channel, rows, limit=1)
        async with asyncio.TaskGroup() as group:  # a ledger error in one slot stops them all
            for _ in range(slots):
                group.create_task(self._slot(sender, channel, rows))

    async def _slot(self, sender: Sender, channel: str, rows: Pending, limit: int = 0) -> None:
        """One sending slot: sends messages one at a time, each claimed first.

        While a message is out, the claim of the next one (with this slot's previous outcome) is
        being committed, so the wait for the disk overlaps the wait for the peer. At any moment
        a slot has at most two messages sent and not recorded: the one out, and the one before.
        A claim another renewd won is passed over; a claim refused because another renewd took
        the ledger stops the run.
        """
        owed: list[Mark] = []
        job: Job | None = None
        sent = 0
        while True:
            if job is None:  # nothing claimed yet: claim one before anything goes out
                job, claim = self._take(channel, rows)
                taken = await self.marks.commit(owed + claim)
                owed = []
                if job is None:
                    return
                job = self._if_claimed(job, taken)
                continue
            action, message = job
            sent += 1
            following, claim = (None, []) if sent == limit else self._take(channel, rows)
            committing = self.marks.submit(owed + claim)
            try:
                result = await self._deliver(sender, message)
            finally:
                taken = await self.marks.wait(committing)
            owed = [self._record(action, result)]
            job = self._if_claimed(following, taken)
            if following is None or self._halted(channel):
                if job is not None:  # claimed but never sent: back to pending, attempt and all
                    owed.append(Mark(job[0]["id"], "released", job[0]["attempts"] + 1))
                await self.marks.commit(owed)
                return

    def _if_claimed(self, job: Job | None, taken: frozenset[int] | None) -> Job | None:
        if job is None:
            return None
        if taken is None:
            self._fenced()
            return None
        return job if job[0]["id"] in taken else None

    def _take(self, channel: str, rows: Pending) -> tuple[Job | None, list[Mark]]:
        """The next message to send, and the changes that claim it (and fail those that cannot
        be rendered); (None, ...) when the channel is done or stopping."""
        changes: list[Mark] = []
        while rows and not self._halted(channel):
            action = rows.popleft()
            self.progress()
            try:
                message = self._message(action)
            except Exception as exc:  # a template error is this message's failure, not the run's
                count = f"notify:{channel}:failed"
                self.counts[count] += 1
                error = {"error": f"cannot render: {exc}"}
                changes.append(Mark(action["id"], "failed", action["attempts"], error, count))
                continue
            changes.append(Mark(action["id"], "sending", action["attempts"]))
            return (action, message), changes
        return None, changes

    async def _deliver(self, sender: Sender, message: Outbound) -> Result:
        try:
            result = await sender.send(message)
        except Exception as exc:  # a sender's bug or an I/O error is this message's, not the run's
            result = Result(Status.RETRY, error=f"{type(exc).__name__}: {exc}")
        crash_point("after-send")
        return result

    def _record(self, action: RowMapping, result: Result) -> Mark:
        channel = action["channel"]
        attempts = action["attempts"] + 1
        state = {Status.SENT: "done", Status.FAILED: "failed"}.get(result.status, "pending")
        if state == "pending" and attempts >= MAX_ATTEMPTS:
            state = "failed"
        if result.status is Status.STOP:
            self.stopped[channel] = result.error
        count = f"notify:{channel}:{result.status.value}"
        self.counts[count] += 1
        values = {"provider_id": result.provider_id, "error": result.error}
        return Mark(action["id"], state, attempts, values, count)

    def _message(self, action: RowMapping) -> Outbound:
        payload: dict[str, Any] = json.loads(action["payload"])
        values, locale, template = payload["vars"], payload["locale"], action["template"]
        key = message_key(action["id"])
        if action["channel"] == "sms":
            text = self.renderer.sms(template, locale, values)
            return Outbound(key, "sms", payload["to"], locale, text=text)
        rendered = self.renderer.email(template, locale, values)
        return Outbound(
            key, "email", payload["to"], locale, rendered.subject, rendered.text, rendered.html
        )


def _nothing() -> None:
    return None


def _first(failed: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of nested task groups: what stopped the run, reported as itself."""
    error: BaseException = failed
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
