"""Retention forgets old outbox rows and run records, and nothing still needed: a ledger pruned as
hard as it will go after every run decides and does exactly what an unpruned twin does.

A small world runs for two months of days on two ledgers at once, on SQLite and on PostgreSQL:
one with `retention_days: 1` (pruned after each run), its twin with 100 years. The world has
monthly auto-renewals (orders every month), mailboxes renewed elsewhere each month (cycle starts),
mailboxes left to expire (sightings, grace, deletion, a failed auto-renewal before it), domain
reminders, and three days held by mailboxes first seen on their deletion day (each later run
decides the held days again, so their steps must not be forgotten). Each day both ledgers take the
same actions; at the end both hold the same orders, deletions and open rows, the pruned one far
fewer outbox rows, runs, sightings and cycle starts, and nothing in it points at a row that is
gone. `renewd prune` then brings the twin to the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from renewd.act.retention import prune_ledger
from renewd.act.run import run_day
from renewd.cli.main import main
from renewd.cli.options import load
from renewd.core.dates import add_months
from renewd.state.ledger import Ledger
from renewd.state.retention import OPEN
from renewd.state.schema import actions, alerts, cycle_starts, deletions, orders, runs, sightings

from support import Project

START = date(2027, 1, 10)
DAYS = 72
# Three days on which a mailbox first seen at its deletion day holds the run: each later run
# looks back to the last clean one and decides those days again, so their steps must still be
# in the ledger (the domain reminders of HELD among them) however hard it is pruned.
HELD = START + timedelta(days=40)
HEADER = (
    "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,"
    "renewal_months,email,phone,locale,domain,domain_via_provider,domain_expires_on\n"
)
SETTINGS = "catch_up_days: 3\nguards: {max_shrink_share: 0.9, min_deletions: 100}\n"


@dataclass
class Box:
    mailbox_id: str
    account_id: str
    expires_on: date
    auto_renew: bool
    months: int = 1
    elsewhere: bool = False  # renewed by hand, outside renewd, two days before each expiry
    sms: bool = False
    domain_on: date | None = None

    def row(self, balance: Decimal) -> str:
        domain = f"example.cn,true,{self.domain_on}" if self.domain_on else ",,"
        return (
            f"{self.mailbox_id},{self.account_id},standard,{self.expires_on},"
            f"{str(self.auto_renew).lower()},{balance},30.00,CNY,{self.months},"
            f"{self.mailbox_id}@example.cn,{'+8613800138000' if self.sms else ''},zh-CN,{domain}"
        )


def world() -> tuple[list[Box], dict[str, Decimal]]:
    boxes = [
        Box(f"mb-auto-{n}", "acct-rich", START + timedelta(days=3 + 4 * n), True) for n in range(3)
    ]
    boxes += [
        Box(
            f"mb-hand-{n}",
            f"acct-hand-{n}",
            START + timedelta(days=3 + 5 * n),
            False,
            elsewhere=True,
        )
        for n in range(2)
    ]
    boxes += [
        Box(f"mb-left-{n}", "acct-poor", START + timedelta(days=2 + 9 * n), n % 2 == 0, sms=True)
        for n in range(3)
    ]
    boxes.append(Box("mb-yearly", "acct-rich", START + timedelta(days=20), True, months=12))
    # renewed by hand for a quarter: its new cycle is first seen when its first step is near,
    # after the old cycle's rows could have gone; they tell it was renewed elsewhere
    boxes.append(Box("mb-hand-q", "acct-q", START + timedelta(days=3), False, 3, elsewhere=True))
    boxes += [  # the domain's steps (30 and 7 days before, and the day) fall on HELD
        Box(
            f"mb-domain-{n}",
            "acct-rich",
            START + timedelta(days=300),
            False,
            domain_on=HELD + ahead,
        )
        for n, ahead in enumerate(timedelta(days=d) for d in (30, 7, 0))
    ]
    balances = {box.account_id: Decimal("0.00") for box in boxes}
    balances["acct-rich"] = Decimal("100000.00")
    return boxes, balances


def snapshot(path: Path, boxes: list[Box], balances: dict[str, Decimal], day: date) -> Path:
    rows = [box.row(balances[box.account_id]) for box in boxes]
    path.write_text(HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def what_run_did(ledger: Ledger, run_id: int) -> list[tuple[Any, ...]]:
    return sorted(
        (r["mailbox_id"], r["rule"], r["cycle"], r["step"], r["kind"], r["channel"], r["state"])
        for r in ledger.run_actions(run_id)
    )


def apply(ledger: Ledger, day: date, boxes: list[Box], balances: dict[str, Decimal]) -> list[Box]:
    """The day's renewals (renewd's, and those made by hand) and deletions, applied to the world."""
    with ledger.engine.connect() as conn:
        renewed = conn.execute(
            select(orders).where(orders.c.renewed_on == day, orders.c.state == "charged")
        ).mappings()
        paid = {order["mailbox_id"]: order for order in renewed}
        gone = set(
            conn.execute(
                select(deletions.c.mailbox_id).where(deletions.c.state == "done")
            ).scalars()
        )
    kept = []
    for box in late(day + timedelta(days=1)):
        balances[box.account_id] = Decimal(0)
        boxes.append(box)
    for box in boxes:
        if box.mailbox_id in paid:
            balances[box.account_id] -= Decimal(paid[box.mailbox_id]["amount"])
            box.expires_on = add_months(box.expires_on, box.months)
        elif box.elsewhere and (box.expires_on - day).days == 2:
            box.expires_on = add_months(box.expires_on, box.months)
        if box.mailbox_id not in gone:
            kept.append(box)
    return kept


def late(day: date) -> list[Box]:
    """Unknown to renewd until `day`, on which it is already at its deletion day."""
    if not HELD <= day < HELD + timedelta(days=3):
        return []
    return [Box(f"mb-late-{day.day}", "acct-late", day - timedelta(days=30), False)]


def table(ledger: Ledger, query: Any) -> list[tuple[Any, ...]]:
    with ledger.engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(query))


def count(ledger: Ledger, which: Any) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(which)).scalar_one())


def steps(ledger: Ledger) -> list[tuple[Any, ...]]:
    return table(
        ledger,
        select(actions.c.mailbox_id, actions.c.rule, actions.c.cycle, actions.c.step, actions.c.kind,
               actions.c.channel, actions.c.state),
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def twins(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Project, Project]:
    for name in ("pruned", "kept"):
        (tmp_path / name).mkdir()
    urls = ["", ""]
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        urls = [server.database(), server.database()]
    return (
        Project(tmp_path / "pruned", extra=SETTINGS + "retention_days: 1\n", ledger=urls[0]),
        Project(tmp_path / "kept", extra=SETTINGS + "retention_days: 36500\n", ledger=urls[1]),
    )


def test_pruning_after_every_run_changes_no_decision(twins: tuple[Project, Project]) -> None:
    pruned, kept = twins
    boxes, balances = world()
    boxes += late(START)
    worlds = [(pruned, *load(pruned.config)), (kept, *load(kept.config))]
    forgot, held = 0, 0
    day = START
    for _ in range(DAYS):
        did = []
        for project, config, policy in worlds:
            path = snapshot(project.root / "snapshot.csv", boxes, balances, day)
            report = run_day(config, policy, path, day)
            ledger = project.ledger()
            try:
                did.append(
                    (report.status, sorted(report.held), what_run_did(ledger, report.run_id))
                )
            finally:
                ledger.close()
            if project is pruned and report.pruned:
                forgot += report.pruned.actions
        assert did[0] == did[1], day
        held += did[0][0] == "held"
        ledger = pruned.ledger()
        try:
            boxes = apply(ledger, day, boxes, balances)
        finally:
            ledger.close()
        day += timedelta(days=1)
    assert forgot and held == 3
    ends = [project.ledger() for project in (pruned, kept)]
    try:
        assert_same_records(*ends)
        assert_nothing_points_at_what_is_gone(ends[0])
    finally:
        for ledger in ends:
            ledger.close()
    assert_prune_brings_the_twin_to_the_same_rows(pruned, kept, day - timedelta(days=1))


def assert_same_records(pruned: Ledger, kept: Ledger) -> None:
    """Orders and deletions are never pruned, open rows never; the old rest is gone."""
    for query in (select(orders.c.mailbox_id, orders.c.cycle, orders.c.amount, orders.c.state),
                  select(deletions.c.mailbox_id, deletions.c.cycle, deletions.c.state)):  # fmt: skip
        assert table(pruned, query) == table(kept, query)
    assert count(pruned, orders) >= 8 and count(pruned, deletions) >= 2
    still = select(actions.c.mailbox_id, actions.c.rule, actions.c.cycle, actions.c.step,
                   actions.c.kind, actions.c.channel).where(actions.c.state.in_(OPEN))  # fmt: skip
    assert table(pruned, still) == table(kept, still)
    for which in (actions, runs):
        assert 0 < count(pruned, which) < 0.7 * count(kept, which), which.name
    for which in (sightings, cycle_starts):  # those of settled cycles
        assert count(pruned, which) < count(kept, which), which.name
    assert count(pruned, alerts) < count(kept, alerts)


def assert_nothing_points_at_what_is_gone(ledger: Ledger) -> None:
    ids = {row[0] for row in table(ledger, select(actions.c.id))}
    run_ids = {row[0] for row in table(ledger, select(runs.c.id))}
    assert {row[0] for row in table(ledger, select(actions.c.run_id))} <= run_ids
    leads = select(actions.c.depends_on).where(actions.c.depends_on.is_not(None))
    assert {row[0] for row in table(ledger, leads)} <= ids
    [last] = table(ledger, select(func.max(runs.c.id)).where(runs.c.status == "done"))
    assert last[0] in run_ids


def assert_prune_brings_the_twin_to_the_same_rows(
    pruned: Project, kept: Project, end: date
) -> None:
    """The daily prunes, a day at a time, leave what one `renewd prune` on the last day leaves."""
    text = kept.config.read_text(encoding="utf-8").replace(
        "retention_days: 36500", "retention_days: 1"
    )
    kept.config.write_text(text, encoding="utf-8")
    config, policy = load(kept.config)
    ledger = kept.ledger()
    try:
        bounded = prune_ledger(config, policy, ledger, end, max_runs=2)  # a daily run's way
    finally:
        ledger.close()
    assert bounded.more and bounded.runs <= 2 and "more remain" in str(bounded)
    result = CliRunner().invoke(main, ["prune", "--config", str(kept.config), "--date", str(end)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("pruned what is older than 1 days: ")
    again = CliRunner().invoke(main, ["prune", "--config", str(kept.config), "--date", str(end)])
    assert again.output == "nothing older than 1 days that may go\n"
    ends = [project.ledger() for project in (pruned, kept)]
    try:
        assert steps(ends[0]) == steps(ends[1])
    finally:
        for ledger in ends:
            ledger.close()


def test_prune_without_a_ledger_says_so(tmp_path: Path) -> None:
    project = Project(tmp_path)
    result = CliRunner().invoke(main, ["prune", "--config", str(project.config)])
    assert (result.exit_code, result.output) == (0, "nothing to prune: no ledger yet\n")
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()


def test_prune_waits_for_or_refuses_a_ledger_in_use(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.snapshot()
    assert project.run(START).returncode == 0
    ledger = project.ledger()
    try:
        from renewd.state.lock import RunLock

        with RunLock(ledger.engine):
            busy = project.cli("prune")
    finally:
        ledger.close()
    assert busy.returncode == 75, busy.stderr
    assert project.cli("prune").returncode == 0


def test_retention_days_is_checked(tmp_path: Path) -> None:
    project = Project(tmp_path, extra="retention_days: 0\n")
    result = project.cli("check")
    assert result.returncode == 1
    assert "retention_days must be a whole number of days from 1 to 36500" in result.stderr
