"""How decisions are shown: jsonl (a stable interface for scripts) and a table for people."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any, TextIO

from renewd.evaluate import DayPlan
from renewd.model import Anchor, Decision, Kind
from renewd.snapshot import Snapshot


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


def write_jsonl(plans: Iterable[DayPlan], out: TextIO) -> None:
    """Only actions that would be taken; superseded ones are a table-mode explanation."""
    for plan in plans:
        for decision in plan.actions:
            out.write(json.dumps(decision_record(decision), ensure_ascii=False) + "\n")


def step_label(decision: Decision) -> str:
    prefix = "domain " if decision.anchor is Anchor.DOMAIN else ""
    return f"{prefix}D{decision.step:+d}" if decision.step else f"{prefix}D"


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
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    for row in rows:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            + "\n"
        )
    if len(rows) == 1:
        out.write("(no actions)\n")
    return seen


def summary(plans: Iterable[DayPlan], snapshot: Snapshot) -> str:
    """Counts per rule and action, rows read and rejected: the stderr footer of table mode."""
    taken: Counter[tuple[str, str]] = Counter()
    superseded: Counter[str] = Counter()
    for plan in plans:
        taken.update(
            (d.rule, d.kind.value + (f":{d.channel}" if d.channel else "")) for d in plan.actions
        )
        superseded.update(d.rule for d in plan.superseded)
    lines = [f"rows read: {snapshot.rows_read}, rejected: {snapshot.rejected}"]
    for (rule, action), count in sorted(taken.items()):
        lines.append(f"  {rule:<22} {action:<14} {count}")
    for rule, count in sorted(superseded.items()):
        lines.append(f"  {rule:<22} {'superseded':<14} {count}")
    if not taken and not superseded:
        lines.append("  no actions")
    return "\n".join(lines)


def row_errors(snapshot: Snapshot) -> list[str]:
    lines = [str(error) for error in snapshot.errors]
    hidden = snapshot.rejected - len(snapshot.errors)
    if hidden > 0:
        lines.append(f"{snapshot.path}: ... and {hidden} more rejected rows")
    return lines
