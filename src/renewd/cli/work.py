"""Commands that do the work or watch it: check, run, serve, status."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from renewd.cli import report
from renewd.cli.options import (
    FORMAT,
    PROBLEMS_EXIT,
    SNAPSHOT,
    cfg_snapshot,
    day_option,
    ledger_of,
    load,
    today,
    with_config,
)
from renewd.cli.progress import shown
from renewd.core.errors import ProblemsError
from renewd.core.meter import Meter
from renewd.policy.model import Policy


@click.command()
@with_config
def check(config: Path) -> None:
    """Validate the config, every policy file and every template it names.

    Prints one `path:line: message` per problem and exits 1 if there is any; exits 2 if the
    config itself cannot be read.
    """
    from renewd.act.preflight import check as check_files

    problems = check_files(config)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        sys.exit(PROBLEMS_EXIT)
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

    meter = Meter()
    printing = any(s["backend"] == "console" for s in cfg.senders.values())  # to stdout
    with shown(meter, streaming=printing):
        outcome = run_day(
            cfg, policy, path, when, allow_mass_deletion=allow_mass_deletion, wait=wait, meter=meter
        )
    if fmt == "jsonl":
        with ledger_of(cfg) as ledger:
            report.write_outcomes(ledger.run_actions(outcome.run_id) if ledger else [], sys.stdout)
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
    """The daemon's state: last run, next run, policy, outbox depth, held actions, health.

    Works while the policy files have problems (the daemon keeps its last good policy then).
    """
    from renewd.cli.status import daemon_status
    from renewd.config.load import load_config
    from renewd.policy.loader import load_policy, policy_files

    cfg = load_config(config)
    try:
        policy: Policy | ProblemsError = load_policy(policy_files(cfg.rules))
    except ProblemsError as exc:
        policy = exc
    for line in daemon_status(cfg, policy):
        click.echo(line)
