"""`renewd explain`: why one mailbox gets, or does not get, each action on one day."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from renewd.cli.diff_report import amount
from renewd.cli.options import (
    SNAPSHOT,
    cfg_snapshot,
    day_option,
    existing_ledger,
    load,
    today,
    with_config,
)
from renewd.cli.report import history_rows, label, row_errors, write_rows
from renewd.core.model import Decision, Kind
from renewd.policy.reasons import show

if TYPE_CHECKING:
    from sqlalchemy import RowMapping

    from renewd.plan.explain import Explanation, Verdict

ORDER = ("acts", "superseded", "done", "before cycle", "stands down", "no")


@click.command()
@with_config
@click.argument("mailbox_id")
@day_option("Day to explain [default: today in the policy timezone].")
@SNAPSHOT
def explain(config: Path, mailbox_id: str, day: datetime | None, snapshot: Path | None) -> None:
    """Why MAILBOX_ID gets, or does not get, each action on a day: every rule with the facts it
    read, the condition that failed, what superseded it, what the ledger already holds for the
    cycle, and the account's money in the plan's order.

    Planned exactly as dry-run plans the day (with the ledger, when there is one).
    """
    cfg, policy = load(config)
    when = day.date() if day else today(policy)
    from renewd.plan.explain import explain_mailbox

    ledger = existing_ledger(cfg)
    try:
        path = snapshot or cfg_snapshot(cfg, when)
        found = explain_mailbox(cfg, policy, path, when, mailbox_id, ledger)
        recorded = ledger.mailbox_history(mailbox_id) if ledger is not None else None
    finally:
        if ledger is not None:
            ledger.close()
    if found.explanation is None:
        click.echo(f"{mailbox_id} is on more than one row of {path}: renewd takes no action for it")
    else:
        write(found.explanation, policy.digest, recorded, sys.stdout)
    for line in row_errors(found.snapshot):
        click.echo(line, err=True)


def write(
    found: Explanation, digest: str, recorded: Sequence[RowMapping] | None, out: TextIO
) -> None:
    """`recorded`: the mailbox's rows in the ledger (None: there is no ledger yet)."""
    mailbox, window, turn = found.mailbox, found.window, found.turn
    today_ = window.today
    out.write(f"{mailbox.mailbox_id} on {today_} (account {mailbox.account_id}), policy {digest}\n")
    lines = [
        ("row", _row(found)),
        ("cycle", _cycle(found)),
        ("ledger", _done(found) if recorded is not None else "none yet: every step is new"),
        ("days", _days(window.days)),
        ("money", _money(found)),
        ("decides", _decisions([d for d in turn.decisions if not d.superseded_by])),
    ]
    for title, text in lines:
        first, *rest = text.split("\n")
        out.write(f"{title:<8} {first}\n" + "".join(f"{'':<8} {line}\n" for line in rest))
    if not found.reachable:
        out.write(
            f"\nNo rule has a step for this mailbox on {_days(window.days)}: dry-run does not "
            "look at it. Each rule's conditions as they stand:\n"
        )
    out.write("\nRULES\n")
    for verdict in sorted(found.verdicts, key=lambda v: (ORDER.index(v.status), -v.rule.priority)):
        out.write(_verdict(verdict))
    cycles = {mailbox.expires_on, mailbox.domain_expires_on}
    mine = [row for row in recorded or () if row["cycle"] in cycles]
    if mine:
        out.write("\nLEDGER (this cycle)\n")
        write_rows(history_rows(mine), out)


def _row(found: Explanation) -> str:
    m = found.mailbox
    step = (found.window.today - m.expires_on).days
    parts = [
        m.edition,
        f"expires {m.expires_on} ({label('expiry', step)})",
        f"auto-renew {'on' if m.auto_renew else 'off'}",
        f"fee {amount(m.renewal_fee)} {m.currency} every {m.renewal_months} months",
        f"phone {'yes' if m.phone else 'none'}",
        f"locale {m.locale}",
    ]
    if m.domain_expires_on is not None:
        via = "bought from the provider" if m.domain_via_provider else "bought elsewhere"
        parts.append(f"domain {m.domain or '?'} expires {m.domain_expires_on} ({via})")
    return ", ".join(parts)


def _cycle(found: Explanation) -> str:
    cycle, state = found.cycle, found.state
    return (
        f"from {cycle.began} to {cycle.end} (anchored on day {cycle.anchor_day}; a renewal "
        f"moves it to {cycle.next_end}); renewed by renewd: {_yes(state.renewed)}, "
        f"reminded: {_yes(state.reminded)}"
    )


def _done(found: Explanation) -> str:
    steps = ", ".join(f"{k.rule} {label(_anchor(found, k.cycle), k.step)}" for k in found.done)
    lines = [f"steps already taken or superseded in this cycle: {steps or 'none'}"]
    if found.first_seen:
        lines.append(f"first seen expired on {found.first_seen}")
    return "\n".join(lines)


def _anchor(found: Explanation, cycle: date) -> str:
    return "expiry" if cycle == found.mailbox.expires_on else "domain"


def _days(days: Iterable[date]) -> str:
    listed = list(days)
    if len(listed) == 1:
        return str(listed[0])
    return f"{listed[0]} to {listed[-1]} (catching up after missed days)"


def _money(found: Explanation) -> str:
    m = found.mailbox
    if found.disputed:
        return f"account {m.account_id}: its rows disagree on balance or currency (no money action)"
    first = found.turns[0].mailbox
    lines = [
        f"account {m.account_id}: {amount(first.balance)} {m.currency} in the snapshot, less "
        f"{amount(found.unseen)} renewd charged that the snapshot cannot show yet"
    ]
    for turn in found.turns:
        funds, other = turn.funds, turn.mailbox
        who = "this mailbox" if other.mailbox_id == m.mailbox_id else other.mailbox_id
        text = f"{who} (expires {other.expires_on}): balance {amount(funds.balance)}"
        if funds.committed:
            text += f", {amount(funds.committed)} promised to renewals before it"
        text += f", fee {amount(other.renewal_fee)}"
        shortfall = funds.shortfall(other.renewal_fee)
        text += f", short by {amount(shortfall)}" if shortfall else ", covered"
        if turn.purse:
            text += f"; {turn.purse} {amount(other.renewal_fee)}"
        lines.append("  " + text)
    return "\n".join(lines)


def _decisions(decisions: list[Decision]) -> str:
    if not decisions:
        return "nothing"
    by_rule: dict[str, list[Decision]] = {}
    for d in decisions:
        by_rule.setdefault(d.rule, []).append(d)
    return "; ".join(f"{rule}: {_actions(listed)}" for rule, listed in by_rule.items())


def _actions(decisions: Iterable[Decision]) -> str:
    shown = []
    for d in decisions:
        if d.kind is Kind.DEDUCT:
            shown.append(f"deduct {amount(d.amount or 0)} {d.currency}")
        elif d.kind is Kind.NOTIFY:
            shown.append(d.channel)
        else:
            shown.append("delete")
    return ", ".join(shown) or "nothing to do (no channel it can use)"


def _verdict(v: Verdict) -> str:
    step = f" ({label(v.rule.anchor.value, v.step.step)} on {v.day})" if v.step else ""
    status = {
        "acts": f"ACTS{step}: {_actions(v.decisions)}",
        "superseded": f"SUPERSEDED by {v.superseded_by}{step}",
        "done": f"ALREADY DONE in this cycle{step}",
        "before cycle": f"NOT IN THIS CYCLE{step}: the step is on or before the cycle began",
        "stands down": f"STANDS DOWN{step}: the account's rows disagree on its money",
        "no": "NO",
    }[v.status]
    where = f"{v.rule.source}:{v.rule.line}" if v.rule.source else ""
    text = f"{v.rule.id:<22} {status}  {where}\n"
    text += "    read: " + ", ".join(f"{k} {show(k, val)}" for k, val in v.read.items()) + "\n"
    return text + "".join(f"    why not: {reason}\n" for reason in v.failed)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
