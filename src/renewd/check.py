"""`renewd check`: validate the config, every policy file and every template it names."""

from __future__ import annotations

from pathlib import Path

from renewd.config import load_config
from renewd.errors import Problem, ProblemsError
from renewd.policy.engine import Engine
from renewd.policy.loader import load_policy, policy_files
from renewd.templating import template_problems


def check(path: Path) -> list[Problem]:
    """Every problem found, in file order; an empty list means the daemon would accept it all."""
    try:
        config = load_config(path)
        policy = load_policy(policy_files(config.rules))
    except ProblemsError as exc:
        return exc.problems
    try:
        Engine(policy)
    except Exception as exc:  # durable_rules raises bare Exceptions for definitions it refuses
        return [Problem(policy.sources[0], 0, f"durable_rules refused the compiled policy: {exc}")]
    return template_problems(policy, config.locales, config.templates)
