"""The renewd command line: a thin click layer over the library."""

from __future__ import annotations

import click

from renewd.cli import diff, explain, forecast, init, preview, prune, receipts, records, work


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="renewd")
def main() -> None:
    """renewd: renewal reminders, auto-renewal, grace and deletion for a hosted mail service."""


for command in (
    init.init,
    work.check,
    preview.dry_run,
    preview.simulate,
    diff.diff,
    forecast.forecast,
    explain.explain,
    work.run,
    records.history,
    records.runs,
    records.orders,
    prune.prune,
    receipts.bounces,
    preview.render,
    work.serve,
    work.status,
):
    main.add_command(command)
