"""The executor: applies the outbox. Charges, then deletions, then messages; each outcome recorded.

Every effect runs from a ledger row that was written before it, and records its outcome after.
A crash in between leaves the row open and the next run finishes it: charges and deletions carry
an idempotency key, so repeating them is safe; a message sent but not yet recorded may be sent
twice, at most two per sender slot (see `_slot`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping

from renewd.act.backends.base import Billing, Charge, Provisioning, Removal, TransientError
from renewd.act.faults import crash_point
from renewd.delivery.senders.base import Outbound, Result, Sender, SendWindow, Status
from renewd.delivery.templating import Renderer
from renewd.state.ledger import Ledger

MAX_ATTEMPTS = 8
PAGE = 1000  # outbox rows read at a time
GATHER_SECONDS = 0.001  # how long a commit no slot is waiting for waits for more changes
Change = tuple[int, str, dict[str, Any]]  # an outbox row's id, its new state, other columns


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
        self.marks = Marks(ledger)
        self.stopping = threading.Event()
        self.progress: Callable[[], None] = _nothing
        self.stopped: dict[str, str] = {}

    def run(self, skip: set[int] | None = None) -> Counter[str]:
        """Work through every open row of the outbox, this run's and any left by an earlier one,
        except those `skip` names (their mailbox's row is unusable today, or the run holds them).
        """
        self.skip = skip or set()
        self._charges()
        self._deletions()
        asyncio.run(self._messages())
        return self.counts

    def _open(self, kind: str) -> Pending:
        return Pending(self.ledger, kind, None, self.skip)

    def _charges(self) -> None:
        for action in self._open("deduct"):
            self.progress()
            if self.stopping.is_set():
                return
            order = self.ledger.order_for(action["mailbox_id"], action["cycle"])
            if order is None or order["state"] != "pending":
                continue
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
                outcome = self.billing.charge(charge)
            except TransientError as exc:
                self.ledger.mark(action["id"], "pending", error=str(exc))
                self.counts["deduct:retry"] += 1
                continue
            crash_point("after-charge")
            # A refusal for good (400, an unreadable answer) is not renewal: tell the customer, as
            # for a decline, so they can renew by hand in time.
            state = outcome.status if outcome.status in ("charged", "declined") else "failed"
            self.ledger.settle_order(
                action["id"], order["id"], state, outcome.reference, outcome.error
            )
            self.counts[f"deduct:{state}"] += 1

    def _deletions(self) -> None:
        for action in self._open("delete"):
            self.progress()
            if self.stopping.is_set():
                return
            mailbox_id, cycle = action["mailbox_id"], action["cycle"]
            self.ledger.deletion_requested(action["id"], mailbox_id, cycle, self.provisioning.name)
            key = f"renewd:delete:{mailbox_id}:{cycle.isoformat()}"
            removal = Removal(key, action["account_id"], mailbox_id, cycle)
            try:
                outcome = self.provisioning.delete(removal)
            except TransientError as exc:
                self.ledger.mark(action["id"], "pending", error=str(exc))
                self.counts["delete:retry"] += 1
                continue
            crash_point("after-delete")
            ok = outcome.status == "deleted"
            self.ledger.deletion_settled(
                action["id"], mailbox_id, cycle, ok, outcome.reference, outcome.error
            )
            self.counts[f"delete:{'done' if ok else 'failed'}"] += 1

    async def _messages(self) -> None:
        channels = {
            name: Pending(self.ledger, "notify", name, self.skip)
            for name in self.ledger.open_channels()
        }
        self.marks = Marks(self.ledger)
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
            for action in rows:
                self.ledger.mark(
                    action["id"], "failed", error=f"no sender is configured for {channel}"
                )
                self.counts[f"notify:{channel}:no-sender"] += 1
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
        """One sending slot: sends messages one at a time, each marked as being sent first.

        While a message is out, the next one's mark (with this slot's previous outcome) is
        being committed, so the wait for the disk overlaps the wait for the peer. At any moment
        a slot has at most two messages sent and not recorded: the one out, and the one before.
        """
        job, claim = self._take(channel, rows)
        await self.marks.commit(claim)
        owed: list[Change] = []
        sent = 0
        while job is not None:
            action, message = job
            sent += 1
            job, claim = (None, []) if sent == limit else self._take(channel, rows)
            committing = self.marks.submit(owed + claim)
            try:
                result = await self._deliver(sender, message)
            finally:
                await self.marks.wait(committing)
            owed = [self._record(action, result)]
            if job is not None and (channel in self.stopped or self.stopping.is_set()):
                owed.append((job[0]["id"], "released", {}))  # claimed but never sent
                job = None
        await self.marks.commit(owed)

    def _take(
        self, channel: str, rows: Pending
    ) -> tuple[tuple[RowMapping, Outbound] | None, list[Change]]:
        """The next message to send, and the changes that claim it (and fail those that cannot
        be rendered); (None, ...) when the channel is done or stopping."""
        changes: list[Change] = []
        while rows and channel not in self.stopped and not self.stopping.is_set():
            action = rows.popleft()
            self.progress()
            try:
                message = self._message(action)
            except Exception as exc:  # a template error is this message's failure, not the run's
                self.counts[f"notify:{channel}:failed"] += 1
                changes.append((action["id"], "failed", {"error": f"cannot render: {exc}"}))
                continue
            changes.append((action["id"], "sending", {}))
            return (action, message), changes
        return None, changes

    async def _deliver(self, sender: Sender, message: Outbound) -> Result:
        try:
            result = await sender.send(message)
        except Exception as exc:  # a sender's bug or an I/O error is this message's, not the run's
            result = Result(Status.RETRY, error=f"{type(exc).__name__}: {exc}")
        crash_point("after-send")
        return result

    def _record(self, action: RowMapping, result: Result) -> Change:
        channel = action["channel"]
        state = {Status.SENT: "done", Status.FAILED: "failed"}.get(result.status, "pending")
        if state == "pending" and action["attempts"] + 1 >= MAX_ATTEMPTS:
            state = "failed"
        if result.status is Status.STOP:
            self.stopped[channel] = result.error
        self.counts[f"notify:{channel}:{result.status.value}"] += 1
        return (action["id"], state, {"provider_id": result.provider_id, "error": result.error})

    def _message(self, action: RowMapping) -> Outbound:
        payload: dict[str, Any] = json.loads(action["payload"])
        values, locale, template = payload["vars"], payload["locale"], action["template"]
        key = f"renewd-{action['id']}"
        if action["channel"] == "sms":
            text = self.renderer.sms(template, locale, values)
            return Outbound(key, "sms", payload["to"], locale, text=text)
        rendered = self.renderer.email(template, locale, values)
        return Outbound(
            key, "email", payload["to"], locale, rendered.subject, rendered.text, rendered.html
        )


class Pending:
    """The open outbox rows of one kind (and channel), in id order, read a page at a time as
    they are taken: a big day's outbox is never all in memory. Rows that turn open again
    behind the page being read (a retry) wait for the next run, as they always have."""

    def __init__(self, ledger: Ledger, kind: str, channel: str | None, skip: set[int]) -> None:
        self._ledger = ledger
        self._kind = kind
        self._channel = channel
        self._skip = skip
        self._rows: deque[RowMapping] = deque()
        self._after = 0
        self._more = True

    def __bool__(self) -> bool:
        while not self._rows and self._more:
            page = self._ledger.open_actions(self._kind, self._channel, self._after, PAGE)
            self._more = len(page) == PAGE
            if page:
                self._after = page[-1]["id"]
            self._rows.extend(row for row in page if row["id"] not in self._skip)
        return bool(self._rows)

    def __iter__(self) -> Iterator[RowMapping]:
        while self:
            yield self._rows.popleft()

    def popleft(self) -> RowMapping:
        if not self:
            raise IndexError("no open rows left")
        return self._rows.popleft()


def _nothing() -> None:
    return None


def _first(failed: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of nested task groups: what stopped the run, reported as itself."""
    error: BaseException = failed
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


class Marks:
    """Outbox state changes from all sending slots, committed together.

    Each slot still waits for its own changes to be committed (a message is marked as being sent
    before it leaves), but the slots share transactions: a commit (an fsync on SQLite) carries
    several messages instead of one. A commit starts as soon as a slot waits for it, else
    GATHER_SECONDS after its first change: a slot whose message is still out loses nothing by
    that wait, and fewer commits leave more CPU for sending.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.waiting: list[tuple[list[Change], asyncio.Future[None]]] = []
        self.ready = asyncio.Event()
        self.urgent = asyncio.Event()

    def submit(self, changes: list[Change]) -> asyncio.Future[None]:
        """Queue `changes`; the future is done once they are committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if changes:
            self.waiting.append((changes, done))
            self.ready.set()
        else:
            done.set_result(None)
        return done

    async def wait(self, done: asyncio.Future[None]) -> None:
        """Returns once that commit is done; raises what stopped it."""
        if any(queued is done for _, queued in self.waiting):
            self.urgent.set()
        await done

    async def commit(self, changes: list[Change]) -> None:
        await self.wait(self.submit(changes))

    async def write(self) -> None:
        try:
            await self._write()
        finally:  # no commit will come: whoever still waits for one stops waiting
            for _, done in self.waiting:
                done.cancel()

    async def _write(self) -> None:
        while True:
            await self.ready.wait()
            if not self.urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.urgent.wait(), GATHER_SECONDS)
            self.ready.clear()
            self.urgent.clear()
            batch, self.waiting = self.waiting, []
            changes = [change for slot, _ in batch for change in slot]
            try:
                await asyncio.to_thread(self.ledger.mark_many, changes)
            except Exception as exc:  # every waiting slot learns that its changes did not land
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for _, done in batch:
                done.set_result(None)
