"""The executor's two ends on the ledger: the open rows it reads a page at a time, and the claims
and outcomes of all sending slots, committed together."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import RowMapping

from renewd.act.faults import crash_point
from renewd.state.claims import Mark, Tenure
from renewd.state.ledger import Ledger

PAGE = 1000  # outbox rows read at a time
GATHER_SECONDS = 0.001  # how long a commit no slot is waiting for waits for more changes
Taken = frozenset[int] | None  # the rows a commit claimed; None: the ledger is not ours now


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


class Marks:
    """Outbox claims and outcomes from all sending slots, committed together.

    Each slot still waits for its own changes to be committed (a message is claimed before it
    leaves), but the slots share transactions: a commit (an fsync on SQLite) carries several
    messages instead of one. A commit starts as soon as a slot waits for it, else
    GATHER_SECONDS after its first change: a slot whose message is still out loses nothing by
    that wait, and fewer commits leave more CPU for sending. Each slot learns which rows the
    commit claimed (None: the ledger is no longer this process's).
    """

    def __init__(self, ledger: Ledger, tenure: Tenure) -> None:
        self.ledger = ledger
        self.tenure = tenure
        self.waiting: list[tuple[list[Mark], asyncio.Future[Taken]]] = []
        self.ready = asyncio.Event()
        self.urgent = asyncio.Event()
        # Commits in a thread of their own: in asyncio's shared pool they waited behind the
        # senders' writes.
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="renewd-ledger")

    def submit(self, changes: list[Mark]) -> asyncio.Future[Taken]:
        """Queue `changes`; the future is done once they are committed."""
        done: asyncio.Future[Taken] = asyncio.get_running_loop().create_future()
        if changes:
            self.waiting.append((changes, done))
            self.ready.set()
        else:
            done.set_result(frozenset())
        return done

    async def wait(self, done: asyncio.Future[Taken]) -> Taken:
        """Returns once that commit is done, with the rows it claimed; raises what stopped it."""
        if any(queued is done for _, queued in self.waiting):
            self.urgent.set()
        return await done

    async def commit(self, changes: list[Mark]) -> Taken:
        return await self.wait(self.submit(changes))

    async def write(self) -> None:
        try:
            await self._write()
        finally:  # no commit will come: whoever still waits for one stops waiting
            for _, done in self.waiting:
                done.cancel()
            self.thread.shutdown(wait=False)

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
                loop = asyncio.get_running_loop()
                taken = await loop.run_in_executor(
                    self.thread, self.ledger.mark_many, changes, self.tenure
                )
            except Exception as exc:  # every waiting slot learns that its changes did not land
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for _, done in batch:
                done.set_result(taken)
            crash_point("after-commit")
