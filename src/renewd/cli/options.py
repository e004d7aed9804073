"""Options, helpers and error handling the commands share."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import click

if TYPE_CHECKING:
    from renewd.state.ledger import Ledger

from renewd.cli import report
from renewd.config.load import config_path, load_config
from renewd.config.model import Config
from renewd.core.errors import LockBusy, RenewdError
from renewd.core.model import Mailbox
from renewd.plan.evaluate import DayPlan
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy
from renewd.snapshot.reader import Snapshot

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


@contextlib.contextmanager
def ledger_of(config: Path) -> Iterator[Ledger]:
    from renewd.act.run import open_ledger

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
    from renewd.state.db import database_url
    from renewd.state.ledger import Ledger

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
