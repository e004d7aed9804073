"""How decisions are shown: jsonl (a stable interface for scripts) and a table for people."""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

from renewd.act.held import held_summary
from renewd.core.dates import add_months
from renewd.core.errors import RenewdError
from renewd.core.model import Anchor, Decision, Kind
from renewd.plan.evaluate import DayPlan
from renewd.snapshot.reader import Snapshot

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import RowMapping

    from renewd.act.receipts import Tally
    from renewd.act.run import RunReport


def decision_record(decision: Decision) -> dict[str, Any]:
    """The jsonl object for one action. Keys are an interface: add, never rename."""
    record: dict[str, Any] = {
        "date": decision.date.isoformat(),
        "mailbox_id": decision.mailbox_id,
        "account_id": decision.account_id,
        "rule": decision.rule,
        "action": decision.kind.value,
        "cycle": decision.cycle.isoformat(),
        "step": decision.step,
    }
    if decision.kind is Kind.NOTIFY:
        record["channel"] = decision.channel
        record["template"] = decision.template
    elif decision.kind is Kind.DEDUCT:
        record["amount"] = str(decision.amount)
        record["currency"] = decision.currency
    return record


LINE_BREAKS = re.compile("[\u2028\u2029\x85]")
_ENCODER = json.JSONEncoder(ensure_ascii=False)


_string = json.encoder.encode_basestring  # what _ENCODER writes a str with (ensure_ascii off)


def json_line(record: dict[str, Any]) -> str:
    """One record, one line, whatever a consumer counts as a line break (str.splitlines too)."""
    return LINE_BREAKS.sub(_escaped, _ENCODER.encode(record)) + "\n"


def _escaped(found: re.Match[str]) -> str:
    return f"\\u{ord(found[0]):04x}"


class ActionLine:
    """`json_line(decision_record(d))` for an action, None for a superseded decision (a table-mode
    explanation, never a jsonl line): the same text, made several times faster by encoding what a
    rule fixes (its id, the action, channel and template) once. Picklable and stateless but for
    that cache, so the processes of a simulation each encode their share."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, Kind, str, str], tuple[str, str]] = {}

    def __call__(self, decision: Decision) -> str | None:
        if decision.superseded_by:
            return None
        kind = decision.kind
        parts = self._parts.get((decision.rule, kind, decision.channel, decision.template))
        if parts is None:
            parts = self._fixed(decision)
        middle, tail = parts
        if kind is Kind.DEDUCT:
            amount, currency = _string(str(decision.amount)), _string(decision.currency)
            tail = f', "amount": {amount}, "currency": {currency}}}\n'
        line = (
            f'{{"date": "{decision.date.isoformat()}", '
            f'"mailbox_id": {_string(decision.mailbox_id)}, '
            f'"account_id": {_string(decision.account_id)}{middle}{decision.cycle.isoformat()}", '
            f'"step": {decision.step:d}{tail}'
        )
        return line if line.isascii() else LINE_BREAKS.sub(_escaped, line)

    def _fixed(self, decision: Decision) -> tuple[str, str]:
        kind = decision.kind
        middle = f', "rule": {_string(decision.rule)}, "action": {_string(kind.value)}, "cycle": "'
        tail = "}\n"
        if kind is Kind.NOTIFY:
            channel, template = _string(decision.channel), _string(decision.template)
            tail = f', "channel": {channel}, "template": {template}}}\n'
        key = (decision.rule, kind, decision.channel, decision.template)
        parts = self._parts[key] = (middle, tail)
        return parts


def write_jsonl(plans: Iterable[DayPlan], out: TextIO) -> None:
    """Only actions that would be taken; superseded ones are a table-mode explanation."""
    encode = ActionLine()
    for plan in plans:
        lines = filter(None, map(encode, plan.decisions))
        while batch := "".join(itertools.islice(lines, 1024)):  # a big day: a few at a time
            out.write(batch)


def write_lines(days: Iterable[tuple[date, Iterable[str]]], out: TextIO) -> None:
    """Lines made already (`ActionLine`), a day at a time."""
    for _day, lines in days:
        out.writelines(lines)


def step_label(decision: Decision) -> str:
    return label(decision.anchor.value, decision.step)


def label(anchor: str, step: int) -> str:
    """D-30, D, D+7; domain D-7 for steps counted from the domain's expiry."""
    prefix = "domain " if anchor == Anchor.DOMAIN.value else ""
    return f"{prefix}D{step:+d}" if step else f"{prefix}D"


def _detail(decision: Decision) -> str:
    if decision.kind is Kind.NOTIFY:
        return f"{decision.channel}:{decision.template}"
    if decision.kind is Kind.DEDUCT:
        return f"{decision.amount} {decision.currency}"
    return ""


HEADER = ("DATE", "MAILBOX", "ACCOUNT", "RULE", "STEP", "ACTION", "DETAIL", "NOTE")


def write_table(plans: Iterable[DayPlan], out: TextIO) -> list[DayPlan]:
    """Aligned columns, superseded steps included and marked; returns the plans for the summary."""
    seen = []
    rows: list[tuple[str, ...]] = [HEADER]
    for plan in plans:
        seen.append(plan)
        for decision in plan.decisions:
            note = f"superseded by {decision.superseded_by}" if decision.superseded_by else ""
            rows.append(
                (
                    decision.date.isoformat(),
                    decision.mailbox_id,
                    decision.account_id,
                    decision.rule,
                    step_label(decision),
                    decision.kind.value,
                    _detail(decision),
                    note,
                )
            )
    write_rows(rows, out)
    if len(rows) == 1:
        out.write("(no actions)\n")
    return seen


def summary(plans: Iterable[DayPlan], snapshot: Snapshot) -> str:
    """Counts per rule and action, rows read and rejected: the stderr footer of table mode."""
    taken: Counter[tuple[str, str]] = Counter()
    superseded: Counter[str] = Counter()
    for plan in plans:
        for d in plan.decisions:
            if d.superseded_by:
                superseded[d.rule] += 1
            else:
                taken[(d.rule, d.kind.value + (f":{d.channel}" if d.channel else ""))] += 1
    lines = [f"rows read: {snapshot.rows_read}, rejected: {snapshot.rejected}"]
    for (rule, action), count in sorted(taken.items()):
        lines.append(f"  {rule:<22} {action:<14} {count}")
    for rule, count in sorted(superseded.items()):
        lines.append(f"  {rule:<22} {'superseded':<14} {count}")
    if not taken and not superseded:
        lines.append("  no actions")
    return "\n".join(lines)


def row_errors(snapshot: Snapshot) -> list[str]:
    """The rejected rows, then the rows that disagree with their account (kept, not rejected)."""
    lines = [str(error) for error in snapshot.errors]
    hidden = snapshot.rejected - len(snapshot.errors)
    if hidden > 0:
        lines.append(f"{snapshot.path}: ... and {hidden} more rejected rows")
    return lines + [str(conflict) for conflict in snapshot.conflicts]


def write_rows(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Left-aligned columns, the first row being the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            + "\n"
        )


SHOWN = ("pending", "sending", "waiting", "done", "failed", "held")


def write_outcomes(rows: Iterable[RowMapping], out: TextIO) -> None:
    """`run --format jsonl`: the dry-run records plus what became of each action."""
    for row in rows:
        if row["state"] not in SHOWN:
            continue
        record: dict[str, Any] = {
            "date": row["day"].isoformat(),
            "mailbox_id": row["mailbox_id"],
            "account_id": row["account_id"],
            "rule": row["rule"],
            "action": row["kind"],
            "cycle": row["cycle"].isoformat(),
            "step": row["step"],
        }
        if row["kind"] == Kind.NOTIFY.value:
            record.update(channel=row["channel"], template=row["template"])
        elif row["kind"] == Kind.DEDUCT.value:
            record.update(amount=row["amount"], currency=row["currency"])
        record.update(outcome=row["state"], provider_id=row["provider_id"], error=row["error"])
        out.write(json_line(record))


def run_summary(report: RunReport) -> list[str]:
    snapshot = report.result.snapshot
    lines = [
        f"run {report.run_id} for {report.day}: {report.status}",
        f"rows read: {snapshot.rows_read}, rejected: {snapshot.rejected}; "
        f"ledger rows written: {report.written}",
    ]
    lines += [f"  {key:<28} {count}" for key, count in sorted(report.outcomes.items())]
    if not report.outcomes:
        lines.append("  nothing to do")
    if report.held:
        lines.append(f"held: {held_summary(report)}")
    lines += [f"stopped {channel}: {reason}" for channel, reason in sorted(report.stopped.items())]
    if report.pruned:
        lines.append(f"pruned (retention): {report.pruned}")
    lines += row_errors(snapshot)
    return lines


def history_rows(rows: Iterable[RowMapping]) -> list[tuple[str, ...]]:
    """One line per step and channel; a message's DELIVERY is what the last receipt said (its
    state and code; its diagnostic follows the provider's id)."""
    table: list[tuple[str, ...]] = [
        (
            "DAY",
            "RULE",
            "CYCLE",
            "STEP",
            "ACTION",
            "STATE",
            "TRIES",
            "DELIVERY",
            "PROVIDER ID / ERROR",
        )
    ]
    for row in rows:
        action = row["kind"] + (f":{row['channel']}" if row["channel"] else "")
        note = (
            row["error"]
            or row["provider_id"]
            or (f"superseded by {row['superseded_by']}" if row["superseded_by"] else "")
        )
        if row["delivery_detail"]:
            note = f"{note}: {row['delivery_detail']}" if note else row["delivery_detail"]
        table.append(
            (
                row["day"].isoformat(),
                row["rule"],
                row["cycle"].isoformat(),
                label(row["anchor"], row["step"]),
                action,
                row["state"],
                str(row["attempts"]),
                f"{row['delivery']} {row['delivery_code']}".strip(),
                note,
            )
        )
    return table


def run_rows(rows: Iterable[RowMapping]) -> list[tuple[str, ...]]:
    table: list[tuple[str, ...]] = [
        ("RUN", "DAY", "STATUS", "STARTED", "ROWS", "REJECTED", "OUTCOMES", "MESSAGE")
    ]
    for row in rows:
        counts = json.loads(row["counts"] or "{}")
        outcome = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "-"
        table.append(
            (
                str(row["id"]),
                row["day"].isoformat(),
                row["status"],
                row["started_at"][:19],
                str(row["rows_read"]),
                str(row["rows_rejected"]),
                outcome,
                row["message"],
            )
        )
    return table


ORDER_COLUMNS = (
    "order_id",
    "charged_at",
    "account_id",
    "mailbox_id",
    "amount",
    "currency",
    "period_from",
    "period_to",
    "idempotency_key",
    "reference",
)


def order_rows(rows: Iterable[RowMapping]) -> list[tuple[str, ...]]:
    return [ORDER_COLUMNS, *(tuple(_order_cell(row, c) for c in ORDER_COLUMNS) for row in rows)]


def write_orders_csv(rows: Iterable[RowMapping], out: TextIO) -> None:
    """CSV for invoicing; cells a spreadsheet would run as a formula are defused (OWASP's CSV
    injection rules: a leading quote; the csv module quotes and doubles quotes as needed)."""
    writer = csv.writer(out)
    writer.writerow(ORDER_COLUMNS)
    for row in rows:
        writer.writerow([_defuse(_order_cell(row, column)) for column in ORDER_COLUMNS])


def _order_cell(row: RowMapping, column: str) -> str:
    value = row["id"] if column == "order_id" else row[column]
    return value.isoformat() if isinstance(value, date) else str(value)


# = + - @, and their full-width forms, which some spreadsheets fold into them
FORMULA = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
BLANKS = " \t\r\n\x0b\x0c\u00a0\u3000"


def _defuse(cell: str) -> str:
    """A cell that starts a formula, even after blanks (` =1+2`, `\t@SUM(A1)`), or that starts
    with a tab or line break, is prefixed with `'`, which spreadsheets show as text."""
    if cell[:1] in ("\t", "\r", "\n") or cell.lstrip(BLANKS)[:1] in FORMULA:
        return "'" + cell
    return cell


def month_bounds(month: str, timezone: str) -> tuple[str, str]:
    """[start, end) of a calendar month in the policy timezone, as UTC ISO strings."""
    found = re.fullmatch(r"(\d{4})-(\d{2})", month)
    if found is None:
        raise RenewdError(f"--month {month!r}: write the month as YYYY-MM, such as 2026-11")
    if not 1 <= int(found[2]) <= 12:
        raise RenewdError(f"--month {month}: there is no month {found[2]}; months go from 01 to 12")
    first = date(int(found[1]), int(found[2]), 1)
    after = add_months(first, 1)
    zone = ZoneInfo(timezone)
    start, end = (
        datetime.combine(d, time(), zone).astimezone(UTC).isoformat() for d in (first, after)
    )
    return start, end


def bounce_lines(folder: Path, tally: Tally) -> list[str]:
    """`renewd bounces`: what the files were, and the delivery states they recorded."""
    outcomes = ", ".join(
        f"{tally.outcomes[key]} {key}"
        for key in ("recorded", "unchanged", "unknown", "malformed")
        if tally.outcomes[key]
    )
    files = sum(tally.outcomes.values())
    lines = [
        f"{folder}: {files} file{'' if files == 1 else 's'}" + (f": {outcomes}" if files else "")
    ]
    lines += [
        f"  {channel} {status}: {count}"
        for (channel, status), count in sorted(tally.deliveries.items())
    ]
    return lines
