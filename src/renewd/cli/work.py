"""Commands that do the work or watch it: check, run, serve, status."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from renewd.cli import report
from renewd.cli.options import (
    FORMAT,
    SNAPSHOT,
    cfg_snapshot,
    day_option,
    ledger_of,
    load,
    today,
    with_config,
)


@click.command()
@with_config
def check(config: Path) -> None:
    """Validate the config, every policy file and every template it names.

    Prints one `path:line: message` per problem and exits 1 if there is any.
    """
    from renewd.act.preflight import check as check_files

    problems = check_files(config)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{config}: ok")


@click.command()
@with_config
@SNAPSHOT
@day_option("Day to run [default: today in the policy timezone].")
@click.option(
    "--allow-mass-deletion",
    is_flag=True,
    help="Override the mass-deletion and shrink guards, this once.",
)
@click.option(
    "--wait",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait for another renewd to finish.",
)
@FORMAT
def run(
    config: Path,
    snapshot: Path | None,
    day: datetime | None,
    allow_mass_deletion: bool,
    wait: float,
    fmt: str,
) -> None:
    """Do one day's work for real: charge, delete and send, each exactly once.

    Running it again for the same day does nothing new; after a crash it finishes what was left.
    Exits 3 when a guard held deletions or deductions back.
    """
    cfg, policy = load(config)
    when = day.date() if day else today(policy)
    path = snapshot or cfg_snapshot(cfg, when)
    from renewd.act.run import HELD_EXIT, run_day

    outcome = run_day(cfg, policy, path, when, allow_mass_deletion=allow_mass_deletion, wait=wait)
    with ledger_of(config) as ledger:
        rows = ledger.run_actions(outcome.run_id)
    if fmt == "jsonl":
        report.write_outcomes(rows, sys.stdout)
    for line in report.run_summary(outcome):
        click.echo(line, err=fmt == "jsonl")
    if outcome.held:
        sys.exit(HELD_EXIT)


@click.command()
@with_config
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def serve(config: Path, log_format: str) -> None:
    """Run as a service: the day's work at serve.run_at, policy reloads, health and metrics.

    SIGHUP (or a changed rule file) reloads after validating; SIGTERM finishes what is in
    flight and stops; SIGUSR1 runs today's work now.
    """
    from renewd.service import logs
    from renewd.service.daemon import Daemon

    logs.setup(log_format)
    sys.exit(Daemon(config).serve())


@click.command()
@with_config
def status(config: Path) -> None:
    """The daemon's state: last run, next run, policy, outbox depth, held actions, health."""
    cfg, policy = load(config)
    from renewd.cli.status import daemon_status

    for line in daemon_status(cfg, policy):
        click.echo(line)
