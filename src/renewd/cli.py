"""The renewd command line: a thin click layer over the library."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import click

if TYPE_CHECKING:
    from renewd.state.ledger import Ledger

from renewd import report
from renewd.config import Config, config_path, load_config
from renewd.dryrun import plan_day
from renewd.errors import LockBusy, RenewdError
from renewd.evaluate import DayPlan
from renewd.model import Mailbox
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy
from renewd.snapshot import Snapshot

F = TypeVar("F", bound=Callable[..., Any])
BUSY_EXIT = 75  # EX_TEMPFAIL: another renewd holds the ledger; try again later
FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
    help="table for people (with a summary on stderr), jsonl for scripts (one action per line).",
)
SNAPSHOT = click.option(
    "--snapshot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Snapshot file (.csv or .jsonl); default: the config's snapshot path for the date.",
)


def day_option(text: str) -> Callable[[F], F]:
    """The --date option the day-taking commands share."""
    return click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help=text)


def with_config(func: F) -> F:
    """The --config option every command shares; errors a user caused print without a traceback."""

    @click.option(
        "--config",
        "config_file",
        metavar="PATH",
        help="Config file [default: ./config.yaml, or $RENEWD_CONFIG].",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, config_file: str | None, **kwargs: Any) -> Any:
        try:
            return func(*args, config=config_path(config_file), **kwargs)
        except LockBusy as exc:
            click.echo(str(exc), err=True)
            sys.exit(BUSY_EXIT)
        except RenewdError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def load(path: Path) -> tuple[Config, Policy]:
    config = load_config(path)
    return config, load_policy(policy_files(config.rules))


def today(policy: Policy) -> date:
    """What "today" is where the policy lives, not where the server's clock happens to be."""
    return datetime.now(ZoneInfo(policy.timezone)).date()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="renewd")
def main() -> None:
    """renewd: renewal reminders, auto-renewal, grace and deletion for a hosted mail service."""


@main.command()
@with_config
def check(config: Path) -> None:
    """Validate the config, every policy file and every template it names.

    Prints one `path:line: message` per problem and exits 1 if there is any.
    """
    from renewd.check import check as check_files

    problems = check_files(config)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{config}: ok")


@main.command("dry-run")
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


@main.command()
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
        from renewd.simulate import Simulation

        simulation = Simulation(cfg, policy, snapshot or cfg_snapshot(cfg, start.date()), mailboxes)
    except RenewdError as exc:
        raise click.ClickException(str(exc)) from exc
    emit(simulation.run(start.date(), end.date()), simulation.snapshot, fmt)


@contextlib.contextmanager
def ledger_of(config: Path) -> Iterator[Ledger]:
    from renewd.runner import open_ledger

    """The ledger named in the config, for reading; it must have been created by `run`."""
    ledger = open_ledger(load_config(config))
    try:
        ledger.require_schema()
        yield ledger
    finally:
        ledger.close()


def find_mailbox(cfg: Config, policy: Policy, path: Path, mailbox_id: str) -> Mailbox:
    for mailbox in Snapshot(path, policy.editions, cfg.default_locale):
        if mailbox.mailbox_id == mailbox_id:
            return mailbox
    raise RenewdError(f"{path}: no valid row for mailbox {mailbox_id!r}")


def existing_ledger(cfg: Config) -> Ledger | None:
    """The ledger for reading, without loading the database layer when there is none yet."""
    if "://" not in cfg.ledger and not (cfg.base / cfg.ledger).exists():
        return None
    from renewd.state.ledger import Ledger, database_url

    url = database_url(cfg.ledger, cfg.base)
    return Ledger.existing(url)


def cfg_snapshot(cfg: Config, day: date) -> Path:
    if not cfg.snapshot:
        raise RenewdError("no snapshot: pass --snapshot or set 'snapshot' in the config")
    return cfg.snapshot_for(day)


def emit(plans: Iterable[DayPlan], snapshot: Snapshot, fmt: str) -> None:
    """Actions to stdout; rejected rows, and in table mode the summary, to stderr."""
    if fmt == "jsonl":
        report.write_jsonl(plans, sys.stdout)
    else:
        plans = report.write_table(plans, sys.stdout)
    for line in report.row_errors(snapshot):
        click.echo(line, err=True)
    if fmt == "table":
        click.echo(report.summary(plans, snapshot), err=True)


@main.command()
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
    from renewd.runner import HELD_EXIT, run_day

    outcome = run_day(cfg, policy, path, when, allow_mass_deletion=allow_mass_deletion, wait=wait)
    with ledger_of(config) as ledger:
        rows = ledger.run_actions(outcome.run_id)
    if fmt == "jsonl":
        report.write_outcomes(rows, sys.stdout)
    for line in report.run_summary(outcome):
        click.echo(line, err=fmt == "jsonl")
    if outcome.held:
        sys.exit(HELD_EXIT)


@main.command()
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


@main.command()
@with_config
@click.option(
    "--limit", type=int, default=20, show_default=True, help="How many runs, newest first."
)
def runs(config: Path, limit: int) -> None:
    """Past runs with their counts."""
    with ledger_of(config) as ledger:
        rows = ledger.runs(limit)
    report.write_rows(report.run_rows(rows), sys.stdout)


@main.command()
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


@main.command()
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
    from renewd.messages import preview, sample_mailbox
    from renewd.templating import Renderer, TemplateError

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


@main.command()
@with_config
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def serve(config: Path, log_format: str) -> None:
    """Run as a service: the day's work at serve.run_at, policy reloads, health and metrics.

    SIGHUP (or a changed rule file) reloads after validating; SIGTERM finishes what is in
    flight and stops; SIGUSR1 runs today's work now.
    """
    from renewd import logs
    from renewd.daemon import Daemon

    logs.setup(log_format)
    sys.exit(Daemon(config).serve())


@main.command()
@with_config
def status(config: Path) -> None:
    """The daemon's state: last run, next run, policy, outbox depth, held actions, health."""
    cfg, policy = load(config)
    from renewd.status import daemon_status

    for line in daemon_status(cfg, policy):
        click.echo(line)
