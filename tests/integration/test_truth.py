"""What a real `renewd run` tells the customer about their money and dates, read from the emails
it wrote, against a real ledger (SQLite and PostgreSQL) and a real HTTP billing peer."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from peers.backend import BackendPeer
from renewd.state.schema import cycle_starts

from support import Project, csv_row

DAY = date(2026, 12, 1)


def days(n: int) -> date:
    return DAY + timedelta(days=n)


@pytest.fixture
def project(tmp_path: Path, ledger: str) -> Project:
    return Project(tmp_path, ledger=ledger)


def bodies(project: Project, mailbox_id: str) -> list[str]:
    """The plain-text bodies of the emails to one mailbox, in the order they were written."""
    found = []
    for email in project.emails():
        if str(email["To"]).startswith(f"{mailbox_id}@"):
            part = email.get_body(("plain",))
            assert part is not None
            found.append(part.get_content())
    return found


def test_a_charge_the_snapshot_does_not_show_yet_is_in_the_next_message(project: Project) -> None:
    """Two renewals of one account on consecutive days, and a snapshot that is not re-exported in
    between: the second email must say what is left after both charges."""
    path = project.snapshot(
        csv_row(
            "mb-1",
            days(3),
            account_id="acct",
            auto_renew=True,
            balance="300.00",
            fee="100.00",
            locale="en",
        ),
        csv_row(
            "mb-2",
            days(4),
            account_id="acct",
            auto_renew=True,
            balance="300.00",
            fee="100.00",
            locale="en",
        ),
    )
    earlier = path.stat().st_mtime - 3600  # exported an hour before the first run
    os.utime(path, (earlier, earlier))
    assert project.run(DAY).returncode == 0
    assert project.run(days(1)).returncode == 0
    [first] = bodies(project, "mb-1")
    [second] = bodies(project, "mb-2")
    assert "Remaining balance:  CN¥200.00" in first
    assert "Remaining balance:  CN¥100.00" in second


def test_a_declined_charge_is_told_as_a_decline(tmp_path: Path) -> None:
    with BackendPeer() as peer:
        peer.script["mb-1"] = ["declined"]
        project = Project(
            tmp_path,
            billing=f"{{backend: http, url: '{peer.url}', timeout: 5, attempts: 1, backoff: 0}}",
        )
        project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00", locale="en"))
        assert project.run(DAY).returncode == 0
    [body] = bodies(project, "mb-1")
    assert "the charge of the renewal fee (CN¥120.00) to your account balance was declined" in body
    assert "does not cover" not in body and "first add at least" not in body


def test_a_zero_fee_renews_without_an_order_or_a_billing_call(tmp_path: Path) -> None:
    with BackendPeer() as peer:
        project = Project(
            tmp_path,
            billing=f"{{backend: http, url: '{peer.url}', timeout: 5, attempts: 1, backoff: 0}}",
        )
        project.snapshot(
            csv_row("mb-1", days(3), auto_renew=True, balance="0.00", fee="0.00", locale="en")
        )
        assert project.run(DAY).returncode == 0
    assert peer.requests == []
    export = project.cli("orders", "--month", "2026-12").stdout
    assert export.strip().count("\n") == 0  # the header only: nothing to invoice
    [body] = bodies(project, "mb-1")
    assert "free of charge" in body and "CN¥0.00" not in body.split("Remaining")[0]
    history = project.cli("history", "mb-1").stdout
    assert "deduct" in history and "done" in history
    [order] = project.orders()  # the renewal is in the ledger, never billed or invoiced
    assert (order["state"], order["period_to"]) == ("free", date(2027, 12, 4))
    project.snapshot(  # the export now shows the renewal: a new cycle, nothing more to do
        csv_row("mb-1", date(2027, 12, 4), auto_renew=True, balance="0.00", fee="0.00")
    )
    assert project.run(days(1)).returncode == 0
    assert len(project.emails()) == 1


def test_a_monthly_renewal_keeps_the_end_of_the_month(project: Project) -> None:
    """Anchored on the 31st: 01-31 renews to 02-28, and 02-28 to 03-31, not 03-28."""
    monthly = (
        "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,"
        "renewal_months,email,phone,locale\n"
    )
    path = project.root / "snapshot.csv"
    path.write_text(
        monthly + "mb-1,acct-1,standard,2027-01-31,true,500.00,120.00,CNY,1,mb-1@example.cn,,en\n",
        encoding="utf-8",
    )
    assert project.run(date(2027, 1, 28)).returncode == 0
    path.write_text(
        monthly + "mb-1,acct-1,standard,2027-02-28,true,380.00,120.00,CNY,1,mb-1@example.cn,,en\n",
        encoding="utf-8",
    )
    assert project.run(date(2027, 2, 25)).returncode == 0
    periods = [(o["period_from"], o["period_to"], o["anchor_day"]) for o in project.orders()]
    assert periods == [
        (date(2027, 1, 31), date(2027, 2, 28), 31),
        (date(2027, 2, 28), date(2027, 3, 31), 31),
    ]
    first, second = bodies(project, "mb-1")
    assert "Valid through:      February 27, 2027" in first
    assert "Valid through:      March 30, 2027" in second


def test_a_renewal_made_elsewhere_begins_when_renewd_first_sees_it(project: Project) -> None:
    """A monthly mailbox renewed by the customer while renewd was down: the new cycle's step
    that fell in the gap is not sent late; its next one is."""
    header = (
        "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,"
        "renewal_months,email,phone,locale\n"
    )
    path = project.root / "snapshot.csv"

    def export(expires_on: date) -> None:
        row = f"mb-1,acct-1,standard,{expires_on.isoformat()},false,0.00,10.00,CNY,1,mb-1@example.cn,,en\n"
        path.write_text(header + row, encoding="utf-8")

    export(date(2026, 12, 31))
    assert project.run(date(2026, 12, 16)).returncode == 0  # 15 days left
    export(date(2027, 1, 31))  # renewed elsewhere; renewd runs again only on 01-18
    assert project.run(date(2027, 1, 18)).returncode == 0
    assert len(bodies(project, "mb-1")) == 1  # the new cycle's 01-16 step is not sent late
    ledger = project.ledger()
    try:
        with ledger.engine.connect() as conn:
            started = conn.execute(select(cycle_starts.c.cycle, cycle_starts.c.began)).all()
    finally:
        ledger.close()
    assert [tuple(row) for row in started] == [(date(2027, 1, 31), date(2027, 1, 18))]
    assert project.run(date(2027, 1, 24)).returncode == 0  # 7 days left
    assert len(bodies(project, "mb-1")) == 2


def test_an_account_whose_rows_disagree_is_reported_and_takes_no_money_action(
    project: Project,
) -> None:
    """Two rows of one account, one saying 100.00 and the other 500.00: both lines are named,
    nothing is charged and no message speaks of the money, in dry-run, run and simulate alike;
    the plain reminder still goes out."""
    path = project.snapshot(
        csv_row("mb-1", days(3), account_id="acct", auto_renew=True, balance="100.00", locale="en"),
        csv_row("mb-2", days(3), account_id="acct", auto_renew=True, balance="500.00", locale="en"),
    )
    preview = project.cli("dry-run", "--date", DAY.isoformat(), "--format", "jsonl")
    assert preview.returncode == 0, preview.stderr
    planned = [json.loads(line) for line in preview.stdout.splitlines()]
    assert {(p["mailbox_id"], p["rule"], p["action"]) for p in planned} == {
        ("mb-1", "renewal-reminder", "notify"),
        ("mb-2", "renewal-reminder", "notify"),
    }
    [conflict] = [line for line in preview.stderr.splitlines() if "acct" in line]
    assert conflict.startswith(f"{path}:3: balance: ") and "line 2" in conflict
    simulated = project.cli(
        "simulate", "--from", DAY.isoformat(), "--to", days(3).isoformat(), "--format", "jsonl"
    )
    assert simulated.returncode == 0, simulated.stderr
    assert {json.loads(line)["action"] for line in simulated.stdout.splitlines()} == {"notify"}
    assert project.run(DAY).returncode == 0
    assert project.orders() == []
    assert {str(m["Subject"]) for m in project.emails()} == {
        "Your mailbox mb-1 expires in 3 days",
        "Your mailbox mb-2 expires in 3 days",
    }
