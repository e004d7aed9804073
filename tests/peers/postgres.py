"""A private PostgreSQL server for the ledger tests: initdb into a temporary directory, started on
a free loopback port, stopped at the end of the session.

It uses the machine's PostgreSQL binaries (PG_BIN, or `initdb` on PATH, or Debian's
/usr/lib/postgresql/*/bin). Without them the PostgreSQL variants are skipped locally, and fail
under RENEWD_REQUIRE_PEERS=1 (what CI sets). PostgreSQL refuses to run as root: as root the server
runs as the `postgres` user (or `nobody`), owning only its temporary directory.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from peers.ports import free_port

USER = "renewd"


def _binaries() -> Path | None:
    for candidate in (os.environ.get("PG_BIN", ""), os.path.dirname(shutil.which("initdb") or "")):
        if candidate and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


class Postgres:
    def __init__(self, port: int) -> None:
        self.port = port
        self._names = itertools.count(1)

    def database(self) -> str:
        """A new, empty database: its SQLAlchemy URL."""
        import psycopg

        name = f"ledger_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"

    def _dsn(self, name: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname={name}"


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    binaries = _binaries()
    if binaries is None:
        message = "PostgreSQL's server binaries are not installed (initdb, pg_ctl)"
        if os.environ.get("RENEWD_REQUIRE_PEERS"):
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="renewd-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server will not run as root
        owner = next(u for u in ("postgres", "nobody") if _exists(u))
        shutil.chown(root, owner)
        prefix = ["runuser", "-u", owner, "--"]
    data, port = root / "data", free_port()
    _quietly([*prefix, str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "trust"])
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w"]
    _quietly([*prefix, *start, "-o", options, "start"])
    try:
        yield Postgres(port)
    finally:
        stop = [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run([*prefix, *stop], stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _quietly(command: list[str]) -> None:
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True)


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True
