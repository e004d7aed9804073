"""Maildir delivery for the file sender, a batch at a time in one thread.

Each message is delivered as Maildir asks: a unique name in tmp/, the bytes written and synced,
then moved to new/; `deliver` returns only once that is done. What the sending slots hand in
while a batch is being written forms the next batch, written by the same thread: all of its
files first, then synced, SYNCERS at a time (the file system commits syncs that wait together
in one journal commit; one after another, each cost a commit of its own: 3 ms on a busy disk),
then each moved. The event loop hears once a batch instead of once a message: with a thread
per slot, handing the interpreter's lock around (futex calls, about 30 a message) and waking
the loop cost more CPU than the writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PRIVATE_FILE = 0o600
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
Written = str | OSError  # the name a message was delivered under, or why it was not
SYNCERS = 8  # files synced at a time: the file system commits concurrent syncs together


class Maildir:
    """The Maildir at `path`; files named the Maildir way with `host`."""

    def __init__(self, path: Path, host: str, channel: str) -> None:
        self.path = path
        self.host = host
        self.names = itertools.count()
        self.queue: list[tuple[bytes, asyncio.Future[str]]] = []
        self.writing: asyncio.Task[None] | None = None
        self.thread = ThreadPoolExecutor(1, thread_name_prefix=f"renewd-{channel}")
        self.syncers = ThreadPoolExecutor(SYNCERS, thread_name_prefix=f"renewd-{channel}-sync")

    async def deliver(self, data: bytes) -> str:
        """Deliver one message; its file's name. Raises OSError when it could not be."""
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.queue.append((data, done))
        if self.writing is None or self.writing.done():
            self.writing = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.queue:
            batch, self.queue = self.queue, []
            try:
                written = await loop.run_in_executor(
                    self.thread, self._write, [data for data, _ in batch]
                )
            except BaseException as exc:  # whoever waits learns it; the next batch may fare better
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, done), result in zip(batch, written, strict=True):
                if done.done():  # its slot was cancelled: the file is there all the same
                    continue
                if isinstance(result, OSError):
                    done.set_exception(result)
                else:
                    done.set_result(result)

    def _write(self, batch: list[bytes]) -> list[Written]:
        """Write, sync and move a batch of messages; each one's name, or its error."""
        results: list[Written] = [OSError(errno.EIO, "not written")] * len(batch)
        for folder in ("tmp", "new"):  # O_NOFOLLOW guards the file, not the folder it is in
            if (self.path / folder).is_symlink():
                linked = OSError(errno.ELOOP, "a symbolic link", str(self.path / folder))
                return [linked] * len(batch)
        opened: list[tuple[int, int, str]] = []  # place in the batch, file, name
        synced: list[tuple[int, str]] = []
        try:
            for place, data in enumerate(batch):
                name = f"{time.time_ns()}.P{os.getpid()}Q{next(self.names)}.{self.host}"
                try:
                    opened.append((place, self._create(data, name), name))
                except OSError as failed:
                    results[place] = failed
            for (place, _, name), error in zip(
                opened, self.syncers.map(_sync, [fd for _, fd, _ in opened]), strict=True
            ):
                if error is None:
                    synced.append((place, name))
                else:
                    results[place] = error
        finally:
            for _, fd, _ in opened:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for place, name in synced:
            try:
                os.rename(self.path / "tmp" / name, self.path / "new" / name)
                results[place] = name
            except OSError as exc:
                results[place] = exc
        return results

    def _create(self, data: bytes, name: str) -> int:
        """A new file in tmp/ holding `data`, still open (to be synced)."""
        fd = os.open(self.path / "tmp" / name, NEW_FILE | os.O_EXCL, PRIVATE_FILE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            raise
        return fd

    async def close(self) -> None:
        if self.writing is not None and not self.writing.done():
            self.writing.cancel()
        self.thread.shutdown(wait=False)
        self.syncers.shutdown(wait=False)


def _sync(fd: int) -> OSError | None:
    try:
        os.fsync(fd)
    except OSError as exc:
        return exc
    return None
