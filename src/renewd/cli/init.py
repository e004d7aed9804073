"""`renewd init DIR`: a new installation's config, policy, secrets file and systemd unit."""

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
@reported
def init(directory: Path, state_dir: Path) -> None:
    """Write DIR/config.yaml, DIR/rules/, DIR/secrets.env and DIR/renewd.service.

    Ready for `renewd check`: messages go to files under the state directory until you set up
    SMTP and Twilio. Never overwrites: if any of the files exists, nothing is written (exit 2).
    """
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
