"""Shared fixtures: the shipped policy, loaded and compiled once per session."""

from __future__ import annotations

import pytest

from renewd.evaluate import Evaluator
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy

from support import ROOT


@pytest.fixture(scope="session")
def shipped_policy() -> Policy:
    return load_policy(policy_files(ROOT / "rules"))


@pytest.fixture(scope="session")
def shipped(shipped_policy: Policy) -> Evaluator:
    return Evaluator(shipped_policy)
