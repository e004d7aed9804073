"""Shared fixtures: the shipped policy, compiled once per session, a PostgreSQL server, the ledger
a test runs on (SQLite, then PostgreSQL), and the `serve` processes a test started, reaped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peers.postgres import Postgres, running_postgres
from renewd.plan.evaluate import Evaluator
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy

from support import ROOT, Served


@pytest.fixture(scope="session")
def shipped_policy() -> Policy:
    return load_policy(policy_files(ROOT / "rules"))


@pytest.fixture(scope="session")
def shipped(shipped_policy: Policy) -> Evaluator:
    return Evaluator(shipped_policy)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One private PostgreSQL server for the session; each test takes a database of its own."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest) -> str:
    """A SQLite file (""), or a new database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("postgres").database())


@pytest.fixture
def served() -> Iterator[list[Served]]:
    """The `serve` processes a test started; any still running at its end is killed."""
    started: list[Served] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()
