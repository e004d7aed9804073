"""Shared fixtures: the shipped policy, compiled once per session, and a PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peers.postgres import Postgres, running_postgres
from renewd.plan.evaluate import Evaluator
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy

from support import ROOT


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
