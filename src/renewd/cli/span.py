"""The days `diff` and `forecast` simulate: --from, --to or --days."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import click

from renewd.cli.options import today
from renewd.policy.model import Policy

F = TypeVar("F", bound=Callable[..., Any])
MAX_DAYS = 3660


def span_options(default_days: int) -> Callable[[F], F]:
    day = click.DateTime(["%Y-%m-%d"])

    def decorate(func: F) -> F:
        for option in (
            click.option(
                "--days",
                type=click.IntRange(1, MAX_DAYS),
                default=default_days,
                show_default=True,
                help="Days to simulate, from --from, when --to is not given.",
            ),
            click.option("--to", "end", type=day, help="Last day, inclusive."),
            click.option(
                "--from",
                "start",
                type=day,
                help="First day [default: today in the policy timezone].",
            ),
        ):
            func = option(func)
        return func

    return decorate


def span(
    policy: Policy, start: datetime | None, end: datetime | None, days: int
) -> tuple[date, date]:
    """The first and last day: --from (or today where the policy lives), --to or --days."""
    first = start.date() if start else today(policy)
    last = end.date() if end else first + timedelta(days=days - 1)
    if last < first:
        raise click.BadParameter("--to is before --from")
    if (last - first).days >= MAX_DAYS:
        raise click.BadParameter("a simulation spans at most ten years")
    return first, last
