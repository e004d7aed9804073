"""Commands that show what the policy would do, writing nothing: dry-run, simulate, render."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from renewd.cli import notes, report
from renewd.cli.options import (
    FORMAT,
    SNAPSHOT,
    cfg_snapshot,
    day_option,
    emit,
    emit_actions,
    emit_footer,
    find_mailbox,
    ledger_of,
    load,
    today,
    with_config,
)
from renewd.cli.progress import shown
from renewd.core.errors import RenewdError
from renewd.core.meter import Meter
from renewd.plan.day import plan_day

if TYPE_CHECKING:  # the simulator is imported only by the command that runs it
    from renewd.plan.world import TopUps


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
    meter = Meter()
    # jsonl lines are made by the processes that plan the day; the table needs the decisions
    encode = report.ActionLine() if fmt == "jsonl" else None
    with ledger_of(cfg) as ledger, shown(meter):
        result = plan_day(
            cfg, policy, snapshot or cfg_snapshot(cfg, when), when, ledger, meter=meter,
            encode=encode,
        )  # fmt: skip
        recorded = ledger.states_on(result.window.days) if ledger else Counter[str]()
    try:
        if encode is None:
            emit([result.plan], result.snapshot, fmt)
        else:
            sys.stdout.writelines(result.encoded())
            emit_footer([], result.snapshot, fmt)
    finally:
        result.close()
    for line in notes.recorded(recorded, result.window.days):
        click.echo(line, err=True)


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
@click.option(
    "--top-up",
    "top_ups",
    multiple=True,
    metavar="DATE:ACCOUNT:AMOUNT",
    callback=lambda _ctx, _param, values: parse_top_ups(values),
    help="Add AMOUNT to ACCOUNT's balance at the start of DATE (repeatable).",
)
@FORMAT
def simulate(
    config: Path,
    snapshot: Path | None,
    start: datetime,
    end: datetime,
    mailboxes: tuple[str, ...],
    top_ups: TopUps,
    fmt: str,
) -> None:
    """Run the policy on every day of a range, applying each day's actions in memory.

    A deduction lowers the balance and extends the expiry by the renewal period; a deletion
    removes the mailbox; a --top-up raises the balance. Nothing is written or sent.
    """
    if end < start:
        raise click.BadParameter("--to is before --from")
    if (end - start) > timedelta(days=3660):
        raise click.BadParameter("a simulation spans at most ten years")
    cfg, policy = load(config)
    from renewd.plan.simulate import Simulation

    meter = Meter()
    with shown(meter, streaming=fmt == "jsonl"):
        path = snapshot or cfg_snapshot(cfg, start.date())
        simulation = Simulation(cfg, policy, path, mailboxes, meter, top_ups=top_ups)
        # jsonl goes out day by day, made by the processes that simulate; the table is
        # aligned, so it is held whole anyway and printed once the bar is gone
        if fmt == "jsonl":
            lines = simulation.encoded(start.date(), end.date(), report.ActionLine())
            report.write_lines(lines, sys.stdout)
            plans = []
        else:
            plans = list(simulation.run(start.date(), end.date()))
    if fmt == "table":
        plans = emit_actions(plans, fmt)
    emit_footer(plans, simulation.snapshot, fmt)


def parse_top_ups(values: tuple[str, ...]) -> TopUps:
    """`2027-02-01:acct-7:500.00` (the account may hold colons) by day and account."""
    found: dict[date, dict[str, Decimal]] = {}
    for value in values:
        day, _, rest = value.partition(":")
        account, _, amount = rest.rpartition(":")
        try:
            when, money = date.fromisoformat(day), Decimal(amount)
            ok = bool(account) and len(day) == 10 and money.is_finite() and money >= 0
        except (ValueError, ArithmeticError):
            ok = False
        if not ok:
            raise click.BadParameter(
                f"{value!r}: expected DATE:ACCOUNT:AMOUNT, such as 2027-02-01:acct-7:500.00"
            )
        by_account = found.setdefault(when, {})
        by_account[account] = by_account.get(account, Decimal(0)) + money
    return found


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
        sections = preview(policy, cfg, renderer, rule, mailbox, when)
    except TemplateError as exc:
        raise RenewdError(str(exc)) from exc
    for note in notes.fallbacks(cfg, mailbox.locale):
        click.echo(note, err=True)
    for heading, text in sections:
        click.echo(f"----- {heading}\n{text}", nl=False)
