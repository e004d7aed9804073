"""The ledger's database: opening it (SQLite or PostgreSQL), its schema version, shared helpers.

Written through SQLAlchemy Core with nothing dialect-specific in the queries, so the same code
runs on SQLite (the default, one file with owner-only permissions) and PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from sqlalchemy import Engine, create_engine, event, insert, inspect, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from renewd.core.errors import RenewdError
from renewd.state.schema import MIGRATIONS, SCHEMA_VERSION, meta, metadata

BATCH = 500

LIVE_ORDER = ("pending", "charged", "free")  # orders that renew: a free one has no charge

OPEN_ACTION = ("pending", "sending")

KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 4,
}

EPOCH_KEY = "ledger_epoch"  # moved on by every taker of the ledger lock (state/claims.py)


class SchemaError(RenewdError):
    """The database holds a schema this renewd cannot use."""


class LedgerError(RenewdError):
    """The ledger cannot be opened at all: not a database, a server that does not answer, a
    symbolic link where the file should be."""


CONNECT_TIMEOUT = 10  # seconds, for a PostgreSQL URL that does not set connect_timeout itself


def utcnow() -> str:
    return stamp(datetime.now(UTC))


def stamp(moment: datetime) -> str:
    """UTC, always with microseconds, so that stored times compare correctly as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def database_url(setting: str, base: Path) -> str:
    """A URL as given, or a path (relative to the config) meaning a SQLite file."""
    if "://" in setting:
        return setting
    path = base / setting  # its directory resolved, never the file itself (see _refuse_link)
    return f"sqlite:///{path.parent.resolve() / path.name}"


class Database:
    """A connection to the ledger's database and its schema; the parts of the Ledger build on it.

    `readonly` opens an existing ledger without writing anything to it.
    """

    def __init__(self, url: str, readonly: bool = False) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise LedgerError(f"ledger {url.split('://')[0]}://...: not a database URL") from None
        sqlite = parsed.get_backend_name() == "sqlite" and bool(parsed.database)
        if sqlite:
            _refuse_link(Path(str(parsed.database)))
        if sqlite and not readonly:
            _create_private(Path(str(parsed.database)))
        if sqlite and readonly:
            url = f"sqlite:///file:{parsed.database}?mode=ro&uri=true"
        # libpq's keepalives: a client whose server went away notices within about a minute
        connect_args: dict[str, int] = {}
        if parsed.get_backend_name() == "postgresql":
            connect_args = dict(KEEPALIVES)
            if "connect_timeout" not in parsed.query:
                connect_args["connect_timeout"] = CONNECT_TIMEOUT
        try:
            self.engine: Engine = create_engine(url, connect_args=connect_args)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise LedgerError(f"ledger {shown(parsed)}: cannot use this URL ({exc})") from None
        self.epoch = 0  # the ledger's epoch while this process holds the lock (Runs.take_ledger)
        self.snapshot_sha256 = ""  # the running run's snapshot (Runs.start_run): the guard's
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_readonly if readonly else _sqlite_pragmas)
        self._probe(parsed)

    def _probe(self, url: URL) -> None:
        """Open it once now, so that a file that is not a database, or a server that does not
        answer, is one clear line before anything starts rather than a traceback later."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(
                    "PRAGMA schema_version" if url.get_backend_name() == "sqlite" else "SELECT 1"
                )
        except DBAPIError as exc:
            self.engine.dispose()
            reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
            if "not a database" in reason:
                reason = "not a SQLite database"
            raise LedgerError(f"ledger {shown(url)}: cannot open it: {reason}") from None

    @classmethod
    def existing(cls, url: str) -> Self | None:
        """The ledger for reading, or None when nothing has created it yet."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not Path(str(parsed.database)).exists():
            return None
        ledger = cls(url, readonly=True)
        if ledger.version() is None:
            ledger.close()
            return None
        ledger.require_schema()
        return ledger

    def close(self) -> None:
        self.engine.dispose()

    def version(self) -> int | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(meta.name):
                return None
            value = conn.execute(
                select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar()
            return int(value) if value is not None else None

    def upgrade(self) -> None:
        """Create or upgrade the schema in place; call it while holding the run lock."""
        version = self.version()
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaError(
                f"the ledger has schema version {version}, newer than this renewd knows "
                f"({SCHEMA_VERSION}); upgrade renewd, or point it at another ledger"
            )
        if version == SCHEMA_VERSION:
            return
        with self.engine.begin() as conn:
            if version is None:
                metadata.create_all(conn)
            else:
                for step in sorted(n for n in MIGRATIONS if version < n <= SCHEMA_VERSION):
                    MIGRATIONS[step](conn)
            conn.execute(meta.delete().where(meta.c.key == "schema_version"))
            conn.execute(insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))

    def require_schema(self) -> None:
        """For read-only commands: refuse a ledger that `run` has not created or upgraded."""
        version = self.version()
        if version is None:
            raise SchemaError("the ledger is empty: nothing has run yet")
        if version != SCHEMA_VERSION:
            raise SchemaError(
                f"the ledger has schema version {version}; this renewd uses {SCHEMA_VERSION}"
            )


def new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None  # noqa: S101 - every table here has an integer primary key
    return int(key[0])


def chunks(values: Collection[str]) -> Iterator[list[str]]:
    items = sorted(values)
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite ledger URL; None for a server's."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def shown(url: URL) -> str:
    """A database URL as it may be printed: the password masked."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)


def _refuse_link(path: Path) -> None:
    """renewd's state is never reached through a symbolic link: one planted in a shared
    directory would have it write (or truncate) whatever the link points at."""
    if path.is_symlink():
        raise LedgerError(
            f"ledger {path} is a symbolic link; renewd does not follow links to its state: "
            "point 'ledger' at the file itself"
        )


def _create_private(path: Path) -> None:
    """Create the SQLite file owner-only, whatever the umask, before SQLite creates it (its
    journal files take the database file's permissions)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise LedgerError(f"ledger {path}: cannot create it: {exc.strerror}") from None


def _sqlite_readonly(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=30000")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """The default rollback journal, not WAL: a read-only reader (dry-run) then creates no files."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=DELETE")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
