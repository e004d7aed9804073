"""One renewd at a time per ledger: a lock that dies with its process.

SQLite: an flock on `<database>.lock` beside the file. PostgreSQL: a session advisory lock on a
connection held for the run. Both are released by the operating system or the server when the
process dies, so a `kill -9` never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from renewd.core.errors import LockBusy, RenewdError

LOCK_CHECK_SECONDS = 1.0  # how often a run checks, as it works, that the lock is still its own
# The lock's session asks the server to probe the connection after 10 s of silence, every 5 s,
# and to give up after 4 unanswered probes (or 40 s of unacknowledged data): a host that died
# holding the lock frees it within about a minute, not the kernel's default two hours.
SESSION = text(
    "SELECT set_config('tcp_keepalives_idle', '10', false), "
    "set_config('tcp_keepalives_interval', '5', false), "
    "set_config('tcp_keepalives_count', '4', false), "
    "set_config('tcp_user_timeout', '40000', false), "  # PostgreSQL 12 and later
    "set_config('application_name', :name, false)"
)
NAME = "renewd-lock"  # the lock session's application_name: `renewd-lock host pid`

log = logging.getLogger("renewd")


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
        # AUTOCOMMIT: a session idle in a transaction can be killed by the server, and the lock
        # with it, while the run goes on believing it holds the ledger.
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(SESSION, {"name": _identity()})  # who holds it, named before it is
        if connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key()}
        ).scalar():
            self._connection = connection
            return True
        connection.close()
        return False

    def keep(self) -> bool:
        """Make sure the lock is still ours before more work; True if it had to be taken again.

        A PostgreSQL session can end under a long-lived holder (the daemon): a server restart, a
        DBA's pg_terminate_backend, idle_session_timeout, a dropped connection. The lock goes with
        it and another renewd may take the ledger, so a holder that went on would work beside it.
        Raises LockBusy when another renewd holds the ledger now.
        """
        if self._connection is None:  # an flock lives as long as its file descriptor
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            return False
        except SQLAlchemyError:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.close()
            self._connection = None
        if not self._try():
            raise LockBusy(
                "the ledger lock's database session ended and another renewd is working on "
                f"this ledger now ({self._holder()}); stopping"
            )
        return True

    def _path(self) -> Path:
        database = self.engine.url.database or ""
        return Path(f"{database}.lock")

    def _try_file(self) -> bool:
        try:  # never through a link: truncating it would truncate whatever it points at
            fd = os.open(self._path(), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise RenewdError(f"cannot open the lock file {self._path()}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode())
        self._file = fd
        return True

    def _holder(self) -> str:
        if self.engine.dialect.name != "sqlite":
            return self._pg_holder()
        try:
            who = self._path().read_text(encoding="utf-8").strip() or "?"
        except OSError:
            who = "?"
        return f"held by {who} ({self._path()})"

    def _pg_holder(self) -> str:
        """Who holds the advisory lock: the name its session gave itself, its address, since."""
        query = text(
            "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) "
            "AND l.objid::bigint = :low AND l.classid::bigint = :high"
        )
        key = self._key() & 0xFFFFFFFFFFFFFFFF
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query, {"low": key & 0xFFFFFFFF, "high": key >> 32}).first()
        except SQLAlchemyError:
            row = None
        if row is None:
            return "the PostgreSQL advisory lock is held; its session could not be read"
        name, address, since = row
        who = name[len(NAME) :].strip() if name.startswith(NAME) else f"session {name!r}"
        where = f" from {address}" if address else ""
        started = f", connected since {since:%Y-%m-%d %H:%M:%S %Z}" if since else ""
        return f"held by {who}{where}{started}"

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            os.close(self._file)
            self._file = None
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):  # a lost session has released it already
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": self._key()}
                )
            self._connection.close()
            self._connection = None

    def _key(self) -> int:
        """One lock per database: two ledgers on one server do not exclude each other."""
        digest = hashlib.sha256(f"renewd:{self.engine.url.database}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


def _identity() -> str:
    return f"{NAME} host {socket.gethostname()} pid {os.getpid()}"[:63]


class LockWatch:
    """Checks, as effects happen, that the ledger lock is still its holder's. A PostgreSQL
    session can end under a long run (a server restart, a DBA's pg_terminate_backend); if
    another renewd has the ledger by then, `stopping` is set so the run ends after the effects
    in flight, and `lost` says why, rather than work beside the other one."""

    def __init__(
        self,
        lock: RunLock,
        stopping: threading.Event,
        retaken: Callable[[], object] | None = None,
    ) -> None:
        self.lock = lock
        self.stopping = stopping
        self.retaken = retaken
        self.lost: LockBusy | None = None
        self.checked = time.monotonic()

    def __call__(self, every: float = LOCK_CHECK_SECONDS) -> None:
        """At most once per `every` seconds; a lost lock stops the run instead of raising."""
        if self.lost is not None or time.monotonic() - self.checked < every:
            return
        try:
            self.hold()
        except LockBusy as exc:
            log.error("%s; finishing what is in flight", exc)
            self.lost = exc
            self.stopping.set()

    def hold(self) -> None:
        """The lock is still ours, or taken again; else LockBusy: another renewd has it."""
        self.checked = time.monotonic()
        if self.lock.keep():
            log.warning("the ledger lock's database session had ended; took it again")
            if self.retaken is not None:
                self.retaken()

    def cut_off(self, reason: str) -> None:
        """The ledger was found taken by another renewd (a claim was refused): stop as for a
        lost lock, whatever the next check would say."""
        if self.lost is None:
            log.error("%s", reason)
            self.lost = LockBusy(reason)
        self.stopping.set()
