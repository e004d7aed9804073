"""`renewd forecast`: the coming days at a glance, in the terminal or as a chart."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO, TypeVar

import click

from renewd.cli.diff_report import amount
from renewd.cli.options import SNAPSHOT, cfg_snapshot, load, with_config
from renewd.cli.progress import shown
from renewd.cli.report import row_errors, write_rows
from renewd.cli.span import span, span_options
from renewd.core.errors import RenewdError
from renewd.core.meter import Meter
from renewd.plan.forecast import Forecast
from renewd.plan.tally import Key

ZERO = Decimal(0)
V = TypeVar("V")
OUTPUTS = (".html", ".htm", ".svg")


@click.command()
@with_config
@SNAPSHOT
@span_options(90)
@click.option(
    "--by",
    type=click.Choice(["day", "week", "month"]),
    help="Rows of the terminal table [default: day up to 31 days, else week].",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the charts to FILE.html (a page that needs no network) or FILE.svg.",
)
def forecast(
    config: Path,
    snapshot: Path | None,
    start: datetime | None,
    end: datetime | None,
    days: int,
    by: str | None,
    out: Path | None,
) -> None:
    """The coming days as the policy will make them: messages per day and channel (the SMS
    bill), charges and revenue per currency, renewals at risk (auto-renew on, balance short)
    and what they are worth, mailboxes in grace and deletions.

    Exactly what `simulate` would do over the same days, counted. Writes nothing but --out.
    """
    if out is not None and out.suffix.lower() not in OUTPUTS:
        raise click.BadParameter(f"{out}: give a .html or .svg file", param_hint="--out")
    cfg, policy = load(config)
    first, last = span(policy, start, end, days)
    from renewd.plan.forecast import forecast as simulate_and_count

    meter = Meter()
    with shown(meter):
        path = snapshot or cfg_snapshot(cfg, first)
        result = simulate_and_count(cfg, policy, path, first, last, meter)
    write_table(result, by or ("day" if len(result.days) <= 31 else "week"), sys.stdout)
    for line in row_errors(result.snapshot):
        click.echo(line, err=True)
    if out is not None:
        from renewd.cli.forecast_page import page, svg

        text = svg(result) if out.suffix.lower() == ".svg" else page(result, policy)
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise RenewdError(f"{out}: cannot write: {exc.strerror}") from exc
        click.echo(f"wrote {out}", err=True)


def periods(days: list[date], by: str) -> list[tuple[str, list[date]]]:
    """The days in rows: one a day, a week from the first day, or a calendar month."""
    if by == "day":
        return [(day.isoformat(), [day]) for day in days]
    rows: list[tuple[str, list[date]]] = []
    for day in days:
        if by == "week":
            name = (days[0] + timedelta(days=(day - days[0]).days // 7 * 7)).isoformat()
        else:
            name = day.strftime("%Y-%m")
        if not rows or rows[-1][0] != name:
            rows.append((name, []))
        rows[-1][1].append(day)
    return rows


def write_table(result: Forecast, by: str, out: TextIO) -> None:
    snapshot = result.snapshot
    out.write(
        f"forecast {result.start} to {result.end} ({len(result.days)} days), {snapshot.path}: "
        f"{snapshot.rows_read} rows, {snapshot.rejected} rejected\n"
    )
    write_rows(table(result, by), out)
    out.write(NOTE + (GRACE_NOTE.format(by=by) if result.grace_days is not None else "") + ".\n")


NOTE = (
    "AT RISK: renewals on auto-renew that will fail (balance short) by the expiry day, and "
    "their fees"
)
GRACE_NOTE = "; IN GRACE: expired, not yet deleted, at the {by}'s end"


def table(result: Forecast, by: str) -> list[tuple[str, ...]]:
    """The header, a row per period and the totals: the terminal's table, and the page's."""
    tally, currencies = result.tally, result.currencies
    columns: list[tuple[str, Callable[[list[date]], str]]] = []
    for channel in result.channels:
        columns.append((channel.upper(), _count(_at(tally.messages, channel, 0))))
    columns.append(("CHARGES", _count(lambda d: sum(tally.charges[d, c] for c in currencies))))
    for currency in currencies:
        columns.append((f"REVENUE {currency}", _money(_at(tally.revenue, currency, ZERO))))
    columns.append(("AT RISK", _count(lambda d: sum(tally.lapses[d, c] for c in currencies))))
    for currency in currencies:
        columns.append((f"AT RISK {currency}", _money(_at(tally.lapsed, currency, ZERO))))
    columns.append(("DELETIONS", _count(lambda d: tally.deletions[d])))
    grace = result.grace_days is not None
    rows = [(by.upper(), *(title for title, _ in columns), *(("IN GRACE",) if grace else ()))]
    for name, days in periods(result.days, by):
        cells = [cell(days) for _, cell in columns]
        if grace:
            cells.append(f"{tally.grace[days[-1].toordinal()]:,}")
        rows.append((name, *cells))
    rows.append(("TOTAL", *(cell(result.days) for _, cell in columns), *(("",) if grace else ())))
    return rows


def _at(counts: Mapping[Key, V], key: str, zero: V) -> Callable[[int], V]:
    return lambda day: counts.get((day, key), zero)


def _count(value: Callable[[int], int]) -> Callable[[list[date]], str]:
    return lambda days: f"{sum(value(d.toordinal()) for d in days):,}"


def _money(value: Callable[[int], Decimal]) -> Callable[[list[date]], str]:
    return lambda days: amount(sum((value(d.toordinal()) for d in days), ZERO))
