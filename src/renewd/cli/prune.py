"""`renewd prune`: forget outbox rows and run records older than `retention_days`, now."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from renewd.cli.options import day_option, load, today, with_config


@click.command()
@with_config
@day_option("Prune as of this day [default: today in the policy timezone].")
@click.option(
    "--wait",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait for another renewd (serve, run) to let go of the ledger.",
)
def prune(config: Path, day: datetime | None, wait: float) -> None:
    """Forget what is older than `retention_days` and no longer needed.

    Outbox rows (a whole cycle at a time, once no step of it can come due again), run records,
    sightings and cycle starts of settled cycles, old alerts. Consumption orders and deletions
    are never pruned. The daily run does this too, a month of history at a time; this does all
    of it now. Exits 75 while another renewd holds the ledger (see --wait).
    """
    from renewd.act.retention import prune_now

    cfg, policy = load(config)
    when = day.date() if day else today(policy)
    pruned = prune_now(cfg, policy, when, wait)
    if pruned is None:
        click.echo("nothing to prune: no ledger yet")
    elif not pruned:
        click.echo(f"nothing older than {cfg.retention_days} days that may go")
    else:
        click.echo(f"pruned what is older than {cfg.retention_days} days: {pruned}")
