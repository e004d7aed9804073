"""`renewd init DIR`: a new installation's config, policy, secrets file and systemd unit; or,
with --template, a new message template's skeleton."""

from __future__ import annotations

from pathlib import Path

import click

from renewd.cli.options import reported


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/var/lib/renewd"),
    show_default=True,
    help="Where the ledger, the snapshots and the file senders' outbox live.",
)
@click.option(
    "--template",
    "name",
    metavar="NAME",
    help="Instead: write a skeleton of message template NAME into DIR, the config's "
    "`templates` directory ({locale}/NAME/ with every part).",
)
@click.option(
    "--locale",
    "locales",
    multiple=True,
    metavar="LOCALE",
    help="With --template: a locale to write it in (repeat it) [default: en, zh-CN, de].",
)
@reported
def init(directory: Path, state_dir: Path, name: str | None, locales: tuple[str, ...]) -> None:
    """Write DIR/config.yaml, DIR/rules/, DIR/secrets.env and DIR/renewd.service.

    Ready for `renewd check`: messages go to files under the state directory until you set up
    SMTP and Twilio. Never overwrites: if any of the files exists, nothing is written (exit 2).

    With --template NAME, DIR is the template directory and a skeleton of NAME is written in
    each locale; parts already there are kept. `renewd check` refuses a part until you have
    written it (and deleted its renewd-skeleton line).
    """
    if name is not None:
        _template(directory, name, locales or ("en", "zh-CN", "de"))
        return
    from renewd.service.install import init as write

    for item in write(directory, state_dir):
        click.echo(f"wrote {item.path}" + (f" ({item.note})" if item.note else ""))
    config = directory.absolute() / "config.yaml"
    click.echo(
        "next:\n"
        f"  renewd check --config {config}\n"
        f"  renewd dry-run --config {config} --snapshot EXPORT.csv --date YYYY-MM-DD\n"
        f"  sudo cp {directory.absolute() / 'renewd.service'} /etc/systemd/system/ "
        "&& sudo systemctl daemon-reload && sudo systemctl enable --now renewd"
    )


def _template(directory: Path, name: str, locales: tuple[str, ...]) -> None:
    from renewd.service.install import template

    for item in template(directory, name, locales):
        click.echo(f"{'kept' if item.note else 'wrote'} {item.path}")
    click.echo(
        "next: write each part (the variables are in the README, Templates), delete its "
        "renewd-skeleton line, then `renewd check`; `renewd render RULE` shows the result"
    )
