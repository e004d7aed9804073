"""`simulate` predicts `run`.

A small world of mailboxes is driven day by day: each day its snapshot is written, the real
`renewd run` does the day (file senders, ledger billing, a real SQLite ledger), and what renewd
did is applied to the world (a charge lowers the account's balance and moves `expires_on` by the
renewal period on the mailbox's anchor day; a deletion removes the mailbox) to make the next
day's snapshot. Over the same days, `simulate` from the first snapshot must predict exactly the
actions `run` took. The worlds are seeded and random: shared accounts, short balances, zero fees,
monthly and yearly plans, month ends, domains, both locales, free editions.

Some worlds run under the policy with auto-renewal retries (`examples/auto-renew-retry.yaml`),
and their customers top up on random days: the world adds the money to the day's snapshot, and
`simulate` is told the same top-ups (`--top-up`), so that retries after a short balance happen.

Four worlds run in the normal suite (in-process, about 10 s each); `pytest -m slow` runs 26.
"""

from __future__ import annotations

import calendar
import random
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from renewd.act.run import run_day
from renewd.cli.options import load
from renewd.core.dates import add_months
from renewd.core.model import Kind
from renewd.plan.simulate import Simulation
from renewd.plan.world import TopUps
from renewd.state.ledger import Ledger
from renewd.state.schema import actions, deletions, orders

from support import ROOT, Project

START = date(2027, 1, 20)
DAYS = 70
HEADER = (
    "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,"
    "renewal_months,email,phone,locale,domain,domain_via_provider,domain_expires_on,anchor_day"
)
TAKEN = ("pending", "sending", "waiting", "done", "failed")
# A step as both sides see it: day, mailbox, rule, cycle, step, kind, channel, amount
Step = tuple[date, str, str, date, int, str, str, Decimal | None]


@dataclass
class Box:
    mailbox_id: str
    account_id: str
    edition: str
    expires_on: date
    anchor: int  # the day of the month its renewals land on
    auto_renew: bool
    fee: Decimal
    months: int
    phone: str
    locale: str
    domain_on: date | None
    anchor_column: bool  # whether the export states the anchor day

    def row(self, balance: Decimal) -> str:
        domain = self.domain_on.isoformat() if self.domain_on else ""
        return ",".join(
            [
                self.mailbox_id,
                self.account_id,
                self.edition,
                self.expires_on.isoformat(),
                str(self.auto_renew).lower(),
                f"{balance:.2f}",
                f"{self.fee:.2f}",
                "CNY",
                str(self.months),
                f"{self.mailbox_id}@example.cn",
                self.phone,
                self.locale,
                "example.cn" if self.domain_on else "",
                "true" if self.domain_on else "",
                domain,
                str(self.anchor) if self.anchor_column else "",
            ]
        )


def month_end_or_any(rng: random.Random) -> date:
    """An expiry from a week before the start to 60 days after it, often at a month's end."""
    if rng.random() < 0.4:
        month = rng.choice([(2027, 1), (2027, 2), (2027, 3)])
        last = calendar.monthrange(*month)[1]
        return date(*month, rng.choice([last - 2, last - 1, last]))
    return START + timedelta(days=rng.randint(-7, 60))


def make_world(seed: int) -> tuple[list[Box], dict[str, Decimal]]:
    rng = random.Random(seed)
    boxes: list[Box] = []
    balances: dict[str, Decimal] = {}
    for a in range(rng.randint(8, 14)):
        account = f"acct-{a}"
        balances[account] = Decimal(
            rng.choice(["0.00", "10.00", "45.50", "120.00", "300.00", "2000.00"])
        )
        for m in range(rng.choice([1, 1, 2, 3, 4])):
            expires = month_end_or_any(rng)
            months = rng.choice([1, 1, 12])
            boxes.append(
                Box(
                    mailbox_id=f"mb-{a}-{m}",
                    account_id=account,
                    edition=rng.choice(["standard", "basic", "enterprise", "free"]),
                    expires_on=expires,
                    anchor=expires.day,
                    auto_renew=rng.random() < 0.7,
                    fee=Decimal(rng.choice(["0.00", "10.00", "45.50", "120.00"])),
                    months=months,
                    phone=rng.choice(["+8613800138000", ""]),
                    locale=rng.choice(["en", "zh-CN"]),
                    domain_on=START + timedelta(days=rng.randint(0, 40))
                    if rng.random() < 0.3
                    else None,
                    anchor_column=rng.random() < 0.5,
                )
            )
    return boxes, balances


def make_top_ups(seed: int, boxes: list[Box]) -> TopUps:
    """Money customers add: some on any day, and some around an auto-renewing mailbox's expiry,
    from the day after its auto-renewal to its last retry, as a customer told of a failed
    renewal would."""
    rng = random.Random(seed * 7919)
    top_ups: defaultdict[date, dict[str, Decimal]] = defaultdict(dict)
    for box in boxes:
        days = [rng.randint(1, DAYS - 1)] if rng.random() < 0.3 else []
        if box.auto_renew and rng.random() < 0.6:
            days.append((box.expires_on - START).days + rng.randint(-2, 15))
        for offset in days:
            day = START + timedelta(days=offset)
            amount = Decimal(rng.choice(["10.00", "45.50", "120.00", "500.00"]))
            top_ups[day][box.account_id] = top_ups[day].get(box.account_id, Decimal(0)) + amount
    return top_ups


def retry_rules(root: Path) -> Path:
    rules = root / "rules"
    rules.mkdir()
    shutil.copy(ROOT / "rules" / "lifecycle.yaml", rules)
    shutil.copy(ROOT / "examples" / "auto-renew-retry.yaml", rules)
    return rules


def write(path: Path, boxes: list[Box], balances: dict[str, Decimal]) -> None:
    rows = [box.row(balances[box.account_id]) for box in boxes]
    path.write_text(HEADER + "\n" + "".join(row + "\n" for row in rows), encoding="utf-8")


def what_run_did(ledger: Ledger, run_id: int) -> list[Step]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(actions).where(actions.c.run_id == run_id, actions.c.state.in_(TAKEN))
        ).mappings()
        return sorted(
            (
                row["day"],
                row["mailbox_id"],
                row["rule"],
                row["cycle"],
                row["step"],
                row["kind"],
                row["channel"],
                Decimal(row["amount"]) if row["amount"] else None,
            )
            for row in rows
        )


def apply(ledger: Ledger, day: date, boxes: list[Box], balances: dict[str, Decimal]) -> list[Box]:
    """The day's charges and deletions, applied as the service would: the world's own rule moves
    the dates, and renewd's order must have paid for exactly that period."""
    by_id = {box.mailbox_id: box for box in boxes}
    with ledger.engine.connect() as conn:
        renewals = conn.execute(
            select(orders).where(
                orders.c.renewed_on == day, orders.c.state.in_(["charged", "free"])
            )
        ).mappings()
        for order in renewals:
            box = by_id[order["mailbox_id"]]
            balances[box.account_id] -= Decimal(order["amount"])
            box.expires_on = add_months(box.expires_on, box.months, box.anchor)
            assert order["period_to"] == box.expires_on, order
        gone = {
            row.mailbox_id
            for row in conn.execute(
                select(deletions.c.mailbox_id).where(deletions.c.state == "done")
            )
        }
    return [box for box in boxes if box.mailbox_id not in gone]


def predicted(project: Project, first: Path, end: date, top_ups: TopUps) -> dict[date, list[Step]]:
    config, policy = load(project.config)
    simulation = Simulation(config, policy, first, top_ups=top_ups)
    found: dict[date, list[Step]] = defaultdict(list)
    for plan in simulation.run(START, end):
        found[plan.day] = sorted(
            (
                d.date,
                d.mailbox_id,
                d.rule,
                d.cycle,
                d.step,
                d.kind.value,
                d.channel,
                d.amount if d.kind is Kind.DEDUCT else None,
            )
            for d in plan.actions
        )
    return found


def drive(tmp_path: Path, seed: int, retry: bool = False) -> list[Step]:
    """Every day of a world; the steps run took, all agreed on with `simulate`."""
    rules = retry_rules(tmp_path) if retry else ROOT / "rules"
    extra = "guards: {max_shrink_share: 0.9, min_deletions: 100}\n"
    project = Project(tmp_path, extra=extra, rules=rules)
    boxes, balances = make_world(seed)
    top_ups = make_top_ups(seed, boxes) if retry else {}
    first = tmp_path / "first.csv"
    write(first, boxes, balances)
    end = START + timedelta(days=DAYS - 1)
    expected = predicted(project, first, end, top_ups)
    config, policy = load(project.config)
    day = START
    while day <= end:
        for account, amount in top_ups.get(day, {}).items():
            balances[account] += amount
        path = tmp_path / "snapshot.csv"
        write(path, boxes, balances)
        report = run_day(config, policy, path, day)
        assert report.status == "done", (day, report.held)
        ledger = Ledger(project.ledger_url)
        try:
            assert what_run_did(ledger, report.run_id) == expected[day], day
            boxes = apply(ledger, day, boxes, balances)
        finally:
            ledger.close()
        day += timedelta(days=1)
    assert any(expected.values())
    return [step for steps in expected.values() for step in steps]


@pytest.mark.parametrize("seed", range(3))
def test_simulate_predicts_run(tmp_path: Path, seed: int) -> None:
    drive(tmp_path, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 23))
def test_simulate_predicts_run_on_more_worlds(tmp_path: Path, seed: int) -> None:
    drive(tmp_path, seed)


@pytest.mark.parametrize("seed", range(1))
def test_simulate_predicts_run_with_retries_and_top_ups(tmp_path: Path, seed: int) -> None:
    steps = drive(tmp_path, seed, retry=True)
    retried = {(s[1], s[3]) for s in steps if s[2] == "auto-renew-retry" and s[5] == "deduct"}
    assert retried  # this world has renewals made after all, which the others need not have


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 7))
def test_simulate_predicts_run_with_retries_on_more_worlds(tmp_path: Path, seed: int) -> None:
    drive(tmp_path, seed, retry=True)
