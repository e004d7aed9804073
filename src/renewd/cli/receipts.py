"""`renewd bounces`: read the bounce Maildir once, as `serve` does every receipts.poll_seconds."""

from __future__ import annotations

from pathlib import Path

import click

from renewd.cli import report
from renewd.cli.options import load, with_config


@click.command()
@with_config
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The Maildir your MTA delivers bounces to [default: receipts.bounces].",
)
def bounces(config: Path, maildir: Path | None) -> None:
    """Record the bounces (RFC 3464 reports) waiting in a Maildir, then move them aside.

    Each report names its message by the per-message return path (senders.email.return_path):
    hard (5.x.x) and soft (4.x.x) bounces are recorded with their code and diagnostic, read
    files go to cur/, malformed ones are kept in .malformed/ and counted. Safe beside a running
    `serve`, and to run again: a report read twice changes nothing.
    """
    from renewd.act.bounces import bounces_once

    cfg, policy = load(config)
    folder, tally = bounces_once(cfg, policy, maildir)
    for line in report.bounce_lines(folder, tally):
        click.echo(line)
    for _, line in tally.final:
        click.echo(line)
    for line in tally.problems:
        click.echo(line, err=True)
