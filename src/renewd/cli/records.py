"""Commands that read the ledger back: a mailbox's history, past runs, orders to invoice."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from renewd.cli import report
from renewd.cli.options import ledger_of, load, with_config


@click.command()
@with_config
@click.argument("mailbox_id")
def history(config: Path, mailbox_id: str) -> None:
    """Everything renewd decided and did for one mailbox."""
    with ledger_of(config) as ledger:
        rows = ledger.mailbox_history(mailbox_id)
    if not rows:
        click.echo(f"nothing recorded for {mailbox_id}")
        return
    report.write_rows(report.history_rows(rows), sys.stdout)


@click.command()
@with_config
@click.option(
    "--limit", type=int, default=20, show_default=True, help="How many runs, newest first."
)
def runs(config: Path, limit: int) -> None:
    """Past runs with their counts."""
    with ledger_of(config) as ledger:
        rows = ledger.runs(limit)
    report.write_rows(report.run_rows(rows), sys.stdout)


@click.command()
@with_config
@click.option(
    "--month", required=True, metavar="YYYY-MM", help="Calendar month, in the policy timezone."
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "table"]), default="csv", show_default=True
)
def orders(config: Path, month: str, fmt: str) -> None:
    """Consumption orders charged in a month: the invoiceable records (added funds never are)."""
    _, policy = load(config)
    start, end = report.month_bounds(month, policy.timezone)
    with ledger_of(config) as ledger:
        rows = list(ledger.orders_in(start, end))
    if fmt == "csv":
        report.write_orders_csv(rows, sys.stdout)
    else:
        report.write_rows(report.order_rows(rows), sys.stdout)
