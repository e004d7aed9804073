"""Commands that read the ledger back: a mailbox's history, past runs, orders to invoice."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from renewd.cli import report, runinfo
from renewd.cli.options import SNAPSHOT, cfg_snapshot, ledger_of, load, look_up, today, with_config
from renewd.config.load import load_config
from renewd.core.errors import RenewdError
from renewd.core.model import RowError


@click.command()
@with_config
@click.argument("mailbox_id")
@SNAPSHOT
def history(config: Path, mailbox_id: str, snapshot: Path | None) -> None:
    """Everything renewd decided and did for one mailbox.

    A mailbox with nothing recorded is looked up in the snapshot (default: today's): known but
    quiet is not an error; unknown is (exit 2).
    """
    with ledger_of(load_config(config)) as ledger:
        rows = ledger.mailbox_history(mailbox_id) if ledger else []
    if rows:
        report.write_rows(report.history_rows(rows), sys.stdout)
        return
    cfg, policy = load(config)
    path = snapshot or cfg_snapshot(cfg, today(policy))
    if not path.is_file():
        raise RenewdError(
            f"unknown mailbox {mailbox_id!r}: nothing recorded in the ledger, and no snapshot "
            f"{path} to look it up in (pass --snapshot)"
        )
    found = look_up(cfg, policy, path, mailbox_id)
    if found is None:
        raise RenewdError(
            f"unknown mailbox {mailbox_id!r}: nothing recorded in the ledger and no row in {path}"
        )
    why = f" (its row is rejected: {found})" if isinstance(found, RowError) else ""
    click.echo(f"{mailbox_id}: nothing recorded yet; no step of the policy has come due{why}")


@click.command()
@with_config
@click.option(
    "--limit", type=int, default=20, show_default=True, help="How many runs, newest first."
)
@click.option(
    "--show",
    "run_id",
    type=int,
    metavar="N",
    help="One run in full: its held steps, rejected rows.",
)
def runs(config: Path, limit: int, run_id: int | None) -> None:
    """Past runs with their counts; `--show N` for everything about run N."""
    with ledger_of(load_config(config)) as ledger:
        if run_id is not None:
            record = ledger.run_record(run_id) if ledger else None
            if record is None or ledger is None:
                raise RenewdError(f"no run {run_id} in the ledger (renewd runs lists them)")
            runinfo.write_run(record, ledger.held_rows(run_id), sys.stdout)
            return
        rows = ledger.runs(limit) if ledger else []
    if not rows:
        click.echo("no runs yet: `renewd run` (or `renewd serve`) makes the first", err=True)
        return
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
    cfg, policy = load(config)
    start, end = report.month_bounds(month, policy.timezone)
    with ledger_of(cfg) as ledger:
        rows = list(ledger.orders_in(start, end)) if ledger else []
    if fmt == "csv":
        report.write_orders_csv(rows, sys.stdout)
    else:
        report.write_rows(report.order_rows(rows), sys.stdout)
