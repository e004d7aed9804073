"""Commands that show what the policy would do, writing nothing: dry-run, simulate, render."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from renewd.cli.options import (
    FORMAT,
    SNAPSHOT,
    cfg_snapshot,
    day_option,
    emit,
    existing_ledger,
    find_mailbox,
    load,
    today,
    with_config,
)
from renewd.core.errors import RenewdError
from renewd.plan.day import plan_day


@click.command("dry-run")
@with_config
@SNAPSHOT
@day_option("Day to evaluate [default: today in the policy timezone].")
@FORMAT
def dry_run(config: Path, snapshot: Path | None, day: datetime | None, fmt: str) -> None:
    """Print every action the policy would take on one day. Writes nothing, sends nothing.

    With a ledger (after `renewd run`), it shows exactly what `run` would do next: steps already
    done are left out and missed days are caught up.
    """
    cfg, policy = load(config)
    when = day.date() if day else today(policy)
    ledger = existing_ledger(cfg)
    try:
        result = plan_day(cfg, policy, snapshot or cfg_snapshot(cfg, when), when, ledger)
    finally:
        if ledger is not None:
            ledger.close()
    try:
        emit([result.plan], result.snapshot, fmt)
    finally:
        result.close()


@click.command()
@with_config
@SNAPSHOT
@click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First day."
)
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Last day (inclusive)."
)
@click.option(
    "--mailbox",
    "mailboxes",
    multiple=True,
    metavar="ID",
    help="Show only this mailbox (repeatable).",
)
@FORMAT
def simulate(
    config: Path,
    snapshot: Path | None,
    start: datetime,
    end: datetime,
    mailboxes: tuple[str, ...],
    fmt: str,
) -> None:
    """Run the policy on every day of a range, applying each day's actions in memory.

    A deduction lowers the balance and extends the expiry by the renewal period; a deletion
    removes the mailbox. Nothing is written or sent.
    """
    if end < start:
        raise click.BadParameter("--to is before --from")
    if (end - start) > timedelta(days=3660):
        raise click.BadParameter("a simulation spans at most ten years")
    cfg, policy = load(config)
    try:
        from renewd.plan.simulate import Simulation

        simulation = Simulation(cfg, policy, snapshot or cfg_snapshot(cfg, start.date()), mailboxes)
    except RenewdError as exc:
        raise click.ClickException(str(exc)) from exc
    emit(simulation.run(start.date(), end.date()), simulation.snapshot, fmt)


@click.command()
@with_config
@click.argument("rule")
@click.option(
    "--locale", help="Locale of the sample mailbox [default: the config's default_locale]."
)
@click.option(
    "--mailbox", "mailbox_id", metavar="ID", help="Render for this mailbox of the snapshot instead."
)
@SNAPSHOT
@day_option("Day the message is sent [default: the rule's first step].")
def render(
    config: Path,
    rule: str,
    locale: str | None,
    mailbox_id: str | None,
    snapshot: Path | None,
    day: datetime | None,
) -> None:
    """Print what a customer would receive from RULE: subject, text and HTML email, SMS."""
    cfg, policy = load(config)
    when = day.date() if day else None
    from renewd.delivery.messages import preview, sample_mailbox
    from renewd.delivery.templating import Renderer, TemplateError

    if mailbox_id:
        mailbox = find_mailbox(
            cfg, policy, snapshot or cfg_snapshot(cfg, when or today(policy)), mailbox_id
        )
    else:
        mailbox = sample_mailbox(locale or cfg.default_locale)
    if locale:
        mailbox = replace(mailbox, locale=locale)
    renderer = Renderer(cfg.templates, cfg.default_locale)
    try:
        sections = preview(policy, cfg.messages, renderer, rule, mailbox, when)
    except TemplateError as exc:
        raise RenewdError(str(exc)) from exc
    for heading, text in sections:
        click.echo(f"----- {heading}\n{text}", nl=False)
