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
from renewd.core.model import Mailbox, RowError
from renewd.plan.evaluate import DayPlan
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy
from renewd.snapshot.reader import Snapshot, Wanted

F = TypeVar("F", bound=Callable[..., Any])
# The exit codes every command follows (README, "Exit codes"): 0 done; 1 `check` found problems
# in files it could read; 2 a file (or an argument) could not be used at all; 3 `run` held
# deletions or deductions back (HELD_EXIT); 75 another renewd holds the ledger.
PROBLEMS_EXIT = 1
UNUSABLE_EXIT = 2
BUSY_EXIT = 75  # EX_TEMPFAIL: try again later
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


def reported(func: F) -> F:
    """Errors a user caused print as they are, without a traceback, and exit with their code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LockBusy as exc:
            click.echo(str(exc), err=True)
            sys.exit(BUSY_EXIT)
        except RenewdError as exc:
            click.echo(str(exc), err=True)
            sys.exit(UNUSABLE_EXIT)

    return wrapper  # type: ignore[return-value]


def with_config(func: F) -> F:
    """The --config option every command shares (and `reported`)."""

    @click.option(
        "--config",
        "config_file",
        metavar="PATH",
        help="Config file [default: ./config.yaml, or $RENEWD_CONFIG].",
    )
    @functools.wraps(func)
    @reported
    def wrapper(*args: Any, config_file: str | None, **kwargs: Any) -> Any:
        return func(*args, config=config_path(config_file), **kwargs)

    return wrapper  # type: ignore[return-value]


def load(path: Path) -> tuple[Config, Policy]:
    config = load_config(path)
    return config, load_policy(policy_files(config.rules))


def today(policy: Policy) -> date:
    """What "today" is where the policy lives, not where the server's clock happens to be."""
    return datetime.now(ZoneInfo(policy.timezone)).date()


@contextlib.contextmanager
def ledger_of(cfg: Config) -> Iterator[Ledger | None]:
    """The ledger named in the config, for reading only; None before `run` has created it."""
    ledger = existing_ledger(cfg)
    try:
        yield ledger
    finally:
        if ledger is not None:
            ledger.close()


def look_up(cfg: Config, policy: Policy, path: Path, mailbox_id: str) -> Mailbox | RowError | None:
    """The mailbox's row in a snapshot: valid, rejected (why), or not there at all. Only that id's
    row becomes a Mailbox: a look-up reads a big snapshot at the speed of a dry-run."""
    snapshot = Snapshot(path, policy.editions, cfg.default_locale)
    only = Wanted(expiry=frozenset(), ids=frozenset({mailbox_id}))
    found = [m for m in snapshot.scan(only) if m.mailbox_id == mailbox_id]
    if mailbox_id in snapshot.rejected_ids or mailbox_id in snapshot.duplicates:
        kept = [e for e in snapshot.errors if e.mailbox_id == mailbox_id]
        return kept[-1] if kept else RowError(str(path), 0, "mailbox_id", "rejected")
    return found[0] if found else None


def find_mailbox(cfg: Config, policy: Policy, path: Path, mailbox_id: str) -> Mailbox:
    found = look_up(cfg, policy, path, mailbox_id)
    if isinstance(found, Mailbox):
        return found
    why = f": {found}" if found else ""
    raise RenewdError(f"{path}: no valid row for mailbox {mailbox_id!r}{why}")


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
    emit_footer(emit_actions(plans, fmt), snapshot, fmt)


def emit_actions(plans: Iterable[DayPlan], fmt: str) -> list[DayPlan]:
    """The actions to stdout; returns the plans for the summary (none in jsonl mode)."""
    if fmt == "jsonl":
        report.write_jsonl(plans, sys.stdout)
        return []
    return report.write_table(plans, sys.stdout)


def emit_footer(plans: list[DayPlan], snapshot: Snapshot, fmt: str) -> None:
    for line in report.row_errors(snapshot):
        click.echo(line, err=True)
    if fmt == "table":
        click.echo(report.summary(plans, snapshot), err=True)
