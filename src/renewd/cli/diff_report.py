"""How `renewd diff` reads: a table for the person reviewing a policy change, jsonl for scripts."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from itertools import groupby
from typing import Any, TextIO

from renewd.cli.report import json_line, label, write_rows
from renewd.plan.diff import Act, Change, PolicyDiff
from renewd.plan.tally import Tally

SIGNATURES = 1000  # kinds of change told apart; past that they count as "other changes"
EXAMPLES = 3  # mailboxes kept per kind of change, for the sample
MONEY = (
    ("charges", "charges", False),
    ("amount charged", "revenue", True),
    ("failed renewals", "lapses", False),
    ("fees not collected", "lapsed", True),
)


def write_table(diff: PolicyDiff, names: tuple[str, str], sample: int, out: TextIO) -> None:
    days = (diff.end - diff.start).days + 1
    out.write(
        f"renewd diff {names[0]} -> {names[1]}\n"
        f"{diff.start} to {diff.end} ({days} days), {diff.snapshot.path}: "
        f"{diff.snapshot.rows_read} rows, {diff.snapshot.rejected} rejected\n"
        f"mailboxes simulated: {diff.simulated}, affected: {diff.affected}\n"
    )
    if not diff.affected:
        out.write("\nno difference: every mailbox gets exactly the same actions\n")
    out.write("\nACTIONS\n")
    write_rows([("RULE", "ACTION", "OLD", "NEW", "DIFF"), *_action_rows(diff)], out)
    months = _money(diff.old, diff.new)
    totals: dict[tuple[str, str], dict[str, tuple[Any, Any]]] = {}
    for (_, currency), values in months.items():
        total = totals.setdefault(("", currency), {f: (0, 0) for _, f, _ in MONEY})
        for field, (before, after) in values.items():
            total[field] = (total[field][0] + before, total[field][1] + after)
    out.write(
        "\nMONEY (the whole range; charges made, and renewals that fail for a short balance)\n"
    )
    if totals:
        write_rows(
            [("CURRENCY", "", "OLD", "NEW", "DIFF"), *(r[1:] for r in _money_rows(totals))], out
        )
        changed = _money_rows(months, only_changed=True)
        if changed:
            out.write("\nMONEY BY MONTH (what differs)\n")
            write_rows([("MONTH", "CURRENCY", "", "OLD", "NEW", "DIFF"), *changed], out)
    else:
        out.write("(no charges and no failed renewals)\n")
    if diff.affected:
        digest = _Digest(diff.changes(), sample)
        digest.write(out, sample)


def write_jsonl(diff: PolicyDiff, names: tuple[str, str], out: TextIO) -> None:
    """A summary line, a line per rule and action, per month and currency, and per mailbox
    affected (in order of the first day that differs). Keys may be added, never renamed."""
    out.write(
        json_line(
            {
                "record": "summary",
                "old": names[0],
                "new": names[1],
                "from": diff.start.isoformat(),
                "to": diff.end.isoformat(),
                "rows_read": diff.snapshot.rows_read,
                "rejected": diff.snapshot.rejected,
                "simulated": diff.simulated,
                "affected": diff.affected,
                "different": diff.affected > 0,
            }
        )
    )
    for rule, action, old, new in _action_counts(diff):
        record = {"record": "action", "rule": rule, "action": action, "old": old, "new": new}
        out.write(json_line({**record, "difference": new - old}))
    for (month, currency), values in _money(diff.old, diff.new).items():
        record = {"record": "money", "month": month, "currency": currency}
        for _, field, is_money in MONEY:
            for side, value in zip(("old", "new"), values[field], strict=True):
                zero = Decimal("0.00")  # a month with none of them
                record[f"{field}_{side}"] = str(value or zero) if is_money else value
        out.write(json_line(record))
    for change in diff.changes():
        out.write(json_line(_change_record(change)))


def _action_counts(diff: PolicyDiff) -> list[tuple[str, str, int, int]]:
    keys = sorted(set(diff.old.actions) | set(diff.new.actions))
    return [
        (rule, action, diff.old.actions[rule, action], diff.new.actions[rule, action])
        for rule, action in keys
    ]


def _action_rows(diff: PolicyDiff) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (rule, action, f"{old:,}", f"{new:,}", _signed(new - old) if new != old else "=")
        for rule, action, old, new in _action_counts(diff)
    ]
    return rows or [("(none)", "", "0", "0", "=")]


def _money(old: Tally, new: Tally) -> dict[tuple[str, str], dict[str, tuple[Any, Any]]]:
    """Per month and currency, each measure as (old, new)."""
    found: defaultdict[tuple[str, str], dict[str, list[Any]]] = defaultdict(
        lambda: {field: [0, 0] for _, field, _ in MONEY}
    )
    for side, tally in enumerate((old, new)):
        for _, field, _ in MONEY:
            counts: dict[tuple[int, str], Any] = getattr(tally, field)
            for (day, currency), value in counts.items():
                month = date.fromordinal(day).strftime("%Y-%m")
                found[month, currency][field][side] += value
    return {key: {f: (v[0], v[1]) for f, v in found[key].items()} for key in sorted(found)}


def _money_rows(
    money: dict[tuple[str, str], dict[str, tuple[Any, Any]]], only_changed: bool = False
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for (month, currency), values in sorted(money.items()):
        for title, field, is_money in MONEY:
            before, after = values[field]
            if not (before or after) or (only_changed and before == after):
                continue
            change = "=" if before == after else _signed(after - before, is_money)
            shown = [amount(v) if is_money else f"{v:,}" for v in (before, after)]
            rows.append((month, currency, title, *shown, change))
    return rows


def amount(value: Decimal | int) -> str:
    """Money as people read it in a table: 1,440.00 (more decimals only when there are more)."""
    value = Decimal(value)
    return f"{value:,.2f}" if value == round(value, 2) else f"{value.normalize():,f}"


def _signed(value: Any, is_money: bool = False) -> str:
    text = amount(Decimal(value).copy_abs()) if is_money else f"{abs(value):,}"
    return ("+" if value > 0 else "-") + text


def describe(acts: Iterable[Act], amounts: bool = True) -> str:
    """`renewal-reminder D-15: email, sms; auto-renew D-3: deduct 120.00 CNY, email`."""
    parts = []
    for (rule, anchor, step), group in groupby(acts, key=lambda a: (a.rule, a.anchor, a.step)):
        doing = []
        for act in group:
            if act.channel:
                doing.append(act.channel)
            elif act.kind == "deduct" and amounts:
                doing.append(f"deduct {act.amount} {act.currency}")
            else:
                doing.append(str(act.kind))
        parts.append(f"{rule} {label(anchor, step)}: {', '.join(dict.fromkeys(doing))}")
    return "; ".join(parts) or "nothing"


class _Digest:
    """One pass over the changes: kinds of change (what only one policy does, days aside),
    a few mailboxes of each, and the deletions that move."""

    def __init__(self, changes: Iterator[Change], sample: int) -> None:
        self.kinds: Counter[tuple[str, str]] = Counter()
        self.examples: defaultdict[tuple[str, str], list[Change]] = defaultdict(list)
        self.deletions: Counter[str] = Counter()
        self.listed: list[Change] = []
        for change in changes:
            kind = (
                describe(_by_step(change.only_old), False),
                describe(_by_step(change.only_new), False),
            )
            if kind not in self.kinds and len(self.kinds) >= SIGNATURES:
                kind = ("(other changes)", "")
            self.kinds[kind] += 1
            if len(self.examples[kind]) < EXAMPLES:
                self.examples[kind].append(change)
            if change.deletion:
                self.deletions[change.deletion] += 1
                if len(self.listed) < sample:
                    self.listed.append(change)

    def write(self, out: TextIO, sample: int) -> None:
        if self.deletions:
            counts = ", ".join(f"{self.deletions[k]} {k}" for k in ("gone", "added", "moved"))
            out.write(f"\nDELETIONS: {counts}\n")
            rows: list[tuple[str, ...]] = [("", "MAILBOX", "ACCOUNT", "OLD", "NEW")]
            rows += [
                (c.deletion, c.mailbox_id, c.account_id, _day(c.old_deletion), _day(c.new_deletion))
                for c in self.listed
            ]
            write_rows(rows, out)
            shown = len(self.listed)
            if shown < sum(self.deletions.values()):
                more = sum(self.deletions.values()) - shown
                out.write(f"... and {more} more (--format jsonl lists them all)\n")
        out.write("\nCHANGES (what only one policy does, by kind)\n")
        rows = [("MAILBOXES", "OLD ONLY", "NEW ONLY")]
        rows += [(f"{n:,}", old, new) for (old, new), n in self.kinds.most_common()]
        write_rows(rows, out)
        picked = self._sample(sample)
        total = sum(self.kinds.values())
        out.write(f"\nSAMPLE ({len(picked)} of {total:,} affected mailboxes)\n")
        rows = [("MAILBOX", "ACCOUNT", "FIRST DIFFERENT DAY", "OLD DOES", "NEW DOES")]
        rows += [
            (c.mailbox_id, c.account_id, c.first_day.isoformat(), describe(c.old), describe(c.new))
            for c in picked
        ]
        write_rows(rows, out)

    def _sample(self, size: int) -> list[Change]:
        """Round robin over the kinds of change, the commonest first, earliest mailboxes first."""
        picked: list[Change] = []
        ranked = [self.examples[kind] for kind, _ in self.kinds.most_common()]
        for n in range(EXAMPLES):
            for examples in ranked:
                if len(picked) < size and n < len(examples):
                    picked.append(examples[n])
        return sorted(picked, key=lambda c: (c.first_day, c.mailbox_id))


def _by_step(acts: Iterable[Act]) -> list[Act]:
    """The actions in rule and step order, days aside: one kind of change whatever its date."""
    return sorted(acts, key=lambda a: (a.rule, a.anchor, a.step, a.kind, a.channel))


def _day(day: date | None) -> str:
    return day.isoformat() if day else "-"


def _act_record(act: Act) -> dict[str, Any]:
    record: dict[str, Any] = {
        "date": act.day.isoformat(),
        "rule": act.rule,
        "action": str(act.kind),
        "step": act.step,
    }
    if act.channel:
        record.update(channel=act.channel, template=act.template)
    if act.amount:
        record.update(amount=act.amount, currency=act.currency)
    return record


def _change_record(change: Change) -> dict[str, Any]:
    return {
        "record": "mailbox",
        "mailbox_id": change.mailbox_id,
        "account_id": change.account_id,
        "first_day": change.first_day.isoformat(),
        "old": [_act_record(a) for a in change.old],
        "new": [_act_record(a) for a in change.new],
        "only_old": [_act_record(a) for a in change.only_old],
        "only_new": [_act_record(a) for a in change.only_new],
        "deletion_old": _day(change.old_deletion) if change.old_deletion else None,
        "deletion_new": _day(change.new_deletion) if change.new_deletion else None,
        "deletion": change.deletion,
    }
