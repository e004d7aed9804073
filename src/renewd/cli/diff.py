"""`renewd diff`: what a policy change would do to the customers and the money, before it ships."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click

from renewd.cli import diff_report, progress
from renewd.cli.options import SNAPSHOT, cfg_snapshot, with_config
from renewd.cli.report import row_errors
from renewd.cli.revision import rules_at, shown
from renewd.cli.span import span, span_options
from renewd.config.load import load_config
from renewd.config.model import Config
from renewd.core.errors import Problem, ProblemsError
from renewd.core.meter import Meter
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy

DIFFERENT_EXIT = 1  # like diff(1): a CI job can ask a person to look at a policy change


@click.command()
@with_config
@click.argument("old", required=False, type=click.Path(path_type=Path))
@click.argument("new", required=False, type=click.Path(path_type=Path))
@click.option(
    "--against",
    metavar="REV",
    help="OLD is the rules directory (the one argument, or the config's) at this git "
    "revision, NEW is that directory as it is now: --against HEAD~1, --against origin/main.",
)
@SNAPSHOT
@span_options(90)
@click.option(
    "--sample",
    type=click.IntRange(0, 10_000),
    default=20,
    show_default=True,
    help="Affected mailboxes (and deletions) listed in table mode; jsonl lists them all.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
    help="table for the person reviewing the change; jsonl for scripts (a summary, the counts, "
    "the money, then every mailbox affected).",
)
def diff(
    config: Path,
    old: Path | None,
    new: Path | None,
    against: str | None,
    snapshot: Path | None,
    start: datetime | None,
    end: datetime | None,
    days: int,
    sample: int,
    fmt: str,
) -> None:
    """Simulate two policies on the same snapshot and days, and report what changes.

    OLD and NEW are policy directories (or files). Per rule and action, the counts before and
    after; money per month and currency (charges, failed renewals); deletions moved, added or
    gone; the kinds of change and a sample of the mailboxes affected, with the first day that
    differs and what each policy does on it. Exits 0 when nothing differs, 1 when something
    does, 2 on an error.
    """
    cfg = load_config(config)
    from renewd.plan.diff import compare

    with tempfile.TemporaryDirectory(prefix="renewd-diff-") as folder:
        (old_policy, new_policy), names = policies(cfg, old, new, against, Path(folder))
        first, last = span(new_policy, start, end, days)
        path = snapshot or cfg_snapshot(cfg, first)
        meter = Meter()
        with progress.shown(meter):
            result = compare(cfg, old_policy, new_policy, path, first, last, meter)
    try:
        if fmt == "jsonl":
            diff_report.write_jsonl(result, names, sys.stdout)
        else:
            diff_report.write_table(result, names, sample, sys.stdout)
        for line in row_errors(result.snapshot):
            click.echo(line, err=True)
    finally:
        result.close()
    if result.affected:
        sys.exit(DIFFERENT_EXIT)


def policies(
    cfg: Config, old: Path | None, new: Path | None, against: str | None, folder: Path
) -> tuple[tuple[Policy, Policy], tuple[str, str]]:
    """The two policies, and their names as the report shows them."""
    if against is None:
        if old is None or new is None:
            raise click.UsageError("give OLD and NEW policy directories, or --against REV")
        return (_load(old), _load(new)), (old.as_posix(), new.as_posix())
    if new is not None:
        raise click.UsageError("with --against, give at most one rules directory")
    rules = old or cfg.rules
    copy = rules_at(rules, against, folder)
    before = _load(copy, lambda path: shown(path, folder, against, rules))
    return (before, _load(rules)), (f"{against}:{rules.as_posix()}", rules.as_posix())


def _load(path: Path, rename: Callable[[str], str] | None = None) -> Policy:
    """The policy at `path`; a problem in a copy out of git names the file as it is in git."""
    try:
        return load_policy(policy_files(path))
    except ProblemsError as exc:
        if rename is None:
            raise
        raise ProblemsError(
            Problem(rename(p.path), p.line, p.message) for p in exc.problems
        ) from None
