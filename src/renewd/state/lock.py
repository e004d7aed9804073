"""One renewd at a time per ledger: a lock that dies with its process.

SQLite: an flock on `<database>.lock` beside the file. PostgreSQL: a session advisory lock on a
connection held for the run. Both are released by the operating system or the server when the
process dies, so a `kill -9` never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from renewd.errors import RenewdError

ADVISORY_KEY = 0x72656E6577  # "renew"


class LockBusy(RenewdError):
    """Another renewd holds the ledger."""


class RunLock:
    def __init__(self, engine: Engine, wait: float = 0.0) -> None:
        self.engine = engine
        self.wait = wait
        self._file: int | None = None
        self._connection: Connection | None = None

    def __enter__(self) -> RunLock:
        deadline = time.monotonic() + self.wait
        while not self._try():
            if time.monotonic() >= deadline:
                holder = self._holder()
                raise LockBusy(
                    f"another renewd is working on this ledger ({holder}); try later or --wait"
                )
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _try(self) -> bool:
        if self.engine.dialect.name == "sqlite":
            return self._try_file()
        connection = self.engine.connect()
        if connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}
        ).scalar():
            self._connection = connection
            return True
        connection.close()
        return False

    def _path(self) -> Path:
        database = self.engine.url.database or ""
        return Path(f"{database}.lock")

    def _try_file(self) -> bool:
        fd = os.open(self._path(), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._file = fd
        return True

    def _holder(self) -> str:
        if self.engine.dialect.name != "sqlite":
            return "a PostgreSQL advisory lock is held"
        try:
            pid = self._path().read_text(encoding="ascii").strip()
        except OSError:
            pid = "?"
        return f"pid {pid} holds {self._path()}"

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            os.close(self._file)
            self._file = None
        if self._connection is not None:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            self._connection.close()
            self._connection = None
