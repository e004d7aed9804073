"""`renewd run` against real SQLite files, real processes and a real HTTP billing peer."""

from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    Table,
    UniqueConstraint,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from peers.backend import BackendPeer
from renewd.act.run import run_day
from renewd.cli.options import load
from renewd.core.dates import add_months
from renewd.delivery.senders.file import CONCURRENCY
from renewd.state import schema
from renewd.state.lock import RunLock
from renewd.state.schema import SCHEMA_VERSION, cycle_starts, meta, orders

from support import ROOT, Project, csv_row

DAY = date(2026, 12, 1)


def days(n: int) -> date:
    return DAY + timedelta(days=n)


@pytest.fixture
def project(tmp_path: Path, ledger: str) -> Project:
    """Every run test on both ledgers: SQLite, the default, and PostgreSQL, for large operators."""
    return Project(tmp_path, ledger=ledger)


def http_project(tmp_path: Path, peer: BackendPeer, timeout: float = 5.0) -> Project:
    return Project(
        tmp_path,
        billing=f"{{backend: http, url: '{peer.url}', timeout: {timeout}, attempts: 3, backoff: 0}}",
    )


def test_a_day_runs_once_and_a_rerun_does_nothing_new(project: Project) -> None:
    project.snapshot(
        csv_row("mb-remind", days(30)),
        csv_row("mb-renew", days(3), auto_renew=True, balance="500.00"),
    )
    first = project.run(DAY)
    assert first.returncode == 0, first.stderr
    assert "deduct:charged               1" in first.stdout
    emails, sms, orders = project.emails(), project.sms(), project.orders()
    assert sorted(str(m["To"]) for m in emails) == ["mb-remind@example.cn", "mb-renew@example.cn"]
    assert [s["to"] for s in sms] == ["+8613800138000"]
    assert [(o["mailbox_id"], o["amount"], o["state"]) for o in orders] == [
        ("mb-renew", "120.00", "charged")
    ]

    again = project.run(DAY)
    assert again.returncode == 0
    assert "nothing to do" in again.stdout and "ledger rows written: 0" in again.stdout
    assert (len(project.emails()), len(project.sms()), len(project.orders())) == (2, 1, 1)


def test_messages_are_real_multipart_mail_in_the_customers_language(project: Project) -> None:
    project.snapshot(csv_row("mb-zh", days(30)), csv_row("mb-en", days(30), locale="en", phone=""))
    assert project.run(DAY).returncode == 0
    by_to = {str(m["To"]): m for m in project.emails()}
    chinese = by_to["mb-zh@example.cn"]
    assert chinese.get_content_type() == "multipart/alternative"
    assert "续费" in str(chinese["Subject"])
    assert {part.get_content_type() for part in chinese.iter_parts()} == {"text/plain", "text/html"}
    assert chinese["Message-ID"] and chinese["Date"]
    english = by_to["mb-en@example.cn"]
    assert str(english["Subject"]) == "Your mailbox mb-en expires in 30 days"
    assert len(project.sms()) == 1  # the English mailbox has no phone


def test_history_and_runs_show_what_happened(project: Project) -> None:
    project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
    assert project.run(DAY).returncode == 0
    history = project.cli("history", "mb-1")
    lines = history.stdout.splitlines()
    assert lines[0].split()[:6] == ["DAY", "RULE", "CYCLE", "STEP", "ACTION", "STATE"]
    assert any(
        "auto-renew" in line
        and "deduct" in line
        and "done" in line
        and "renewd:charge:mb-1:2026-12-04" in line
        for line in lines
    )
    assert any("renewal-reminder" in line and "superseded" in line for line in lines)
    runs = project.cli("runs")
    assert "2026-12-01  done" in runs.stdout and "deduct:charged=1" in runs.stdout


def test_run_jsonl_reports_each_actions_outcome(project: Project) -> None:
    project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
    result = project.run(DAY, "--format", "jsonl")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["action"], r.get("channel"), r["outcome"]) for r in records] == [
        ("deduct", None, "done"),
        ("notify", "email", "done"),
    ]
    assert (
        records[0]["amount"] == "120.00"
        and records[0]["provider_id"] == "renewd:charge:mb-1:2026-12-04"
    )


def test_dry_run_after_a_run_shows_only_what_is_left(tmp_path: Path) -> None:
    project = Project(tmp_path)  # the SQLite file itself is what this test is about
    project.snapshot(csv_row("mb-1", days(30)))
    assert project.run(DAY).returncode == 0
    ledger_file = project.root / "state" / "ledger.sqlite3"
    before = ledger_file.stat().st_mtime_ns, sorted(p.name for p in ledger_file.parent.iterdir())
    preview = project.cli("dry-run", "--date", DAY.isoformat(), "--format", "jsonl")
    assert preview.returncode == 0 and preview.stdout == ""
    assert (
        ledger_file.stat().st_mtime_ns,
        sorted(p.name for p in ledger_file.parent.iterdir()),
    ) == before


def test_ledger_is_created_owner_only(tmp_path: Path) -> None:
    project = Project(tmp_path)  # the SQLite file itself is what this test is about
    project.snapshot(csv_row("mb-1", days(30)))
    assert project.run(DAY).returncode == 0
    mode = stat.S_IMODE((project.root / "state" / "ledger.sqlite3").stat().st_mode)
    assert mode == 0o600


def test_a_newer_schema_is_a_clear_error(project: Project) -> None:
    project.snapshot(csv_row("mb-1", days(30)))
    assert project.run(DAY).returncode == 0
    ledger = project.ledger()
    with ledger.engine.begin() as conn:
        conn.execute(update(meta).values(value="99"))
    ledger.close()
    result = project.run(days(1))
    assert result.returncode == 2
    assert "schema version 99, newer than this renewd knows" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_run_on_the_same_ledger_is_refused(project: Project) -> None:
    project.snapshot(csv_row("mb-1", days(30)))
    assert project.run(days(-1)).returncode == 0  # creates the ledger
    ledger = project.ledger()
    with RunLock(ledger.engine):
        busy = project.run(DAY)
    ledger.close()
    assert busy.returncode == 75
    assert "another renewd is working on this ledger" in busy.stderr
    assert project.emails() == []
    assert project.run(DAY).returncode == 0
    assert len(project.emails()) == 1


# -- crashes at the worst moments -----------------------------------------------------------


def test_killed_after_the_plan_is_written_the_rerun_does_the_work_once(project: Project) -> None:
    project.snapshot(
        csv_row("mb-1", days(30)), csv_row("mb-2", days(3), auto_renew=True, balance="500.00")
    )
    crashed = project.run(DAY, env={"RENEWD_CRASH_AT": "after-plan"})
    assert crashed.returncode == -9
    assert (project.emails(), project.sms()) == ([], [])
    assert project.run(DAY).returncode == 0
    assert len(project.emails()) == 2 and len(project.sms()) == 1
    assert [o["state"] for o in project.orders()] == ["charged"]


def test_killed_between_charge_and_record_the_customer_is_charged_once(tmp_path: Path) -> None:
    with BackendPeer() as peer:
        project = http_project(tmp_path, peer)
        project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
        assert project.run(DAY, env={"RENEWD_CRASH_AT": "after-charge"}).returncode == -9
        assert len(peer.effects) == 1 and project.orders()[0]["state"] == "pending"
        assert project.run(DAY).returncode == 0
    assert len(peer.requests) == 2
    assert {key for key, _ in peer.requests} == {"renewd:charge:mb-1:2026-12-04"}
    assert len(peer.effects) == 1
    assert project.orders()[0]["state"] == "charged"
    assert [str(m["To"]) for m in project.emails()] == ["mb-1@example.cn"]


def test_killed_mid_outbox_nothing_is_lost_and_at_most_two_per_slot_repeat(
    project: Project,
) -> None:
    """The file sender writes with CONCURRENCY slots by default (32): in each, the message out
    and the one before it may be unrecorded. More messages than that bound, so that it shows."""
    total = 3 * 2 * CONCURRENCY
    project.snapshot(*(csv_row(f"mb-{n}", days(30), phone="") for n in range(total)))
    assert project.run(DAY, env={"RENEWD_CRASH_AT": "after-send#10"}).returncode == -9
    assert 10 <= len(project.emails()) < total
    assert project.run(DAY).returncode == 0
    delivered = [str(m["To"]) for m in project.emails()]
    assert set(delivered) == {f"mb-{n}@example.cn" for n in range(total)}
    assert len(delivered) - len(set(delivered)) <= 2 * CONCURRENCY


# -- billing over HTTP ----------------------------------------------------------------------


def test_declined_charge_sends_the_failure_path_instead(tmp_path: Path) -> None:
    with BackendPeer() as peer:
        peer.script["mb-1"] = ["declined"]
        project = http_project(tmp_path, peer)
        project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
        assert project.run(DAY).returncode == 0
    assert project.orders()[0]["state"] == "declined"
    [email] = project.emails()
    assert "自动续费" in str(email["Subject"]) and "失败" in str(email["Subject"])
    assert len(project.sms()) == 1
    history = project.cli("history", "mb-1").stdout
    assert "auto-renew-failed" in history and "declined by billing" in history


def test_server_errors_are_retried_with_the_same_key(tmp_path: Path) -> None:
    with BackendPeer() as peer:
        peer.script["mb-1"] = ["500", "500"]
        project = http_project(tmp_path, peer)
        project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
        assert project.run(DAY).returncode == 0
    assert [key for key, _ in peer.requests] == ["renewd:charge:mb-1:2026-12-04"] * 3
    assert len(peer.effects) == 1 and project.orders()[0]["state"] == "charged"


def test_a_slow_answer_is_retried_and_charges_once(tmp_path: Path) -> None:
    with BackendPeer(slow_seconds=5) as peer:
        peer.script["mb-1"] = ["slow"]
        project = http_project(tmp_path, peer, timeout=0.3)
        project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
        assert project.run(DAY).returncode == 0
        assert len(peer.requests) == 2
    assert len(peer.effects) == 1 and project.orders()[0]["state"] == "charged"


def test_billing_down_keeps_the_charge_for_the_next_run(tmp_path: Path) -> None:
    with BackendPeer() as peer:
        url = peer.url
    project = Project(
        tmp_path, billing=f"{{backend: http, url: '{url}', timeout: 1, attempts: 2, backoff: 0}}"
    )
    project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
    result = project.run(DAY)
    assert result.returncode == 0 and "deduct:retry" in result.stdout
    assert project.orders()[0]["state"] == "pending" and project.emails() == []
    with BackendPeer() as peer:
        project = http_project(tmp_path, peer)
        assert project.run(DAY).returncode == 0
    assert len(peer.effects) == 1 and project.orders()[0]["state"] == "charged"
    assert len(project.emails()) == 1


# -- balances across runs -------------------------------------------------------------------


def two_on_one_account(balance: str, first_expiry: date) -> tuple[str, str]:
    return (
        csv_row("mb-a", first_expiry, account_id="acct-1", auto_renew=True, balance=balance),
        csv_row("mb-b", days(4), account_id="acct-1", auto_renew=True, balance=balance),
    )


def age(path: Path, seconds: int = 3600) -> None:
    """Make the snapshot look exported before renewd's deductions."""
    moment = path.stat().st_mtime - seconds
    os.utime(path, (moment, moment))


def test_a_deduction_the_snapshot_cannot_show_yet_still_counts(project: Project) -> None:
    age(project.snapshot(*two_on_one_account("150.00", days(3))))
    assert project.run(DAY).returncode == 0
    age(project.snapshot(*two_on_one_account("150.00", days(3))))  # yesterday's export again
    assert project.run(days(1)).returncode == 0
    states = {o["mailbox_id"]: o["state"] for o in project.orders()}
    assert states == {"mb-a": "charged"}, "150.00 cannot pay two fees of 120.00"
    assert any(
        "失败" in str(m["Subject"]) for m in project.emails() if str(m["To"]) == "mb-b@example.cn"
    )


def test_a_renewal_the_snapshot_shows_is_not_subtracted_twice(project: Project) -> None:
    age(project.snapshot(*two_on_one_account("270.00", days(3))))
    assert project.run(DAY).returncode == 0
    renewed = add_year(days(3))
    age(project.snapshot(*two_on_one_account("150.00", renewed)))  # the export shows the renewal
    assert project.run(days(1)).returncode == 0
    assert sorted(o["mailbox_id"] for o in project.orders() if o["state"] == "charged") == [
        "mb-a",
        "mb-b",
    ]
    assert sum(Decimal(o["amount"]) for o in project.orders()) == Decimal("240.00")


def add_year(day: date) -> date:
    return day.replace(year=day.year + 1)


# -- guards ---------------------------------------------------------------------------------


def test_first_sight_of_a_long_expired_mailbox_is_held_then_done(project: Project) -> None:
    project.snapshot(csv_row("mb-old", days(-30)), csv_row("mb-new", days(30)))
    first = project.run(DAY)
    assert first.returncode == 3
    assert (
        "held: 1 deletion: first sight: renewd has not seen this mailbox expired on an earlier run"
        " of another snapshot (mb-old); the full list: renewd runs --show 1"
        in first.stdout.splitlines()
    )
    assert [str(m["To"]) for m in project.emails()] == ["mb-new@example.cn"]
    project.export_again()
    second = project.run(days(1))  # the held day is caught up, now that renewd has seen it
    assert second.returncode == 0, second.stdout
    assert "delete:done                  1" in second.stdout
    history = project.cli("history", "mb-old").stdout
    assert "deletion" in history and "done" in history


def test_mass_deletion_is_held_until_an_operator_overrides(project: Project) -> None:
    doomed = [csv_row(f"mb-{n:02d}", days(-29)) for n in range(15)]
    others = [csv_row(f"keep-{n:02d}", days(30 + n)) for n in range(5)]
    others.append(csv_row("mb-renew", days(4), auto_renew=True, balance="500.00"))
    project.snapshot(*doomed, *others)
    assert project.run(days(-1)).returncode == 0  # sees them expired: D+28 for the doomed
    project.export_again()
    assert project.run(DAY).returncode == 0  # grace reminders at D+29: first seen expired
    project.export_again()
    held = project.run(days(1))
    assert held.returncode == 3
    assert "15 deletions exceed the limit of 10" in held.stdout
    assert project.orders() == []
    history = project.cli("history", "mb-00").stdout
    assert "delete        held" in history and "notify:email  waiting" in history
    deleted = project.run(days(1), "--allow-mass-deletion")
    assert deleted.returncode == 0, deleted.stdout
    assert "delete:done                  15" in deleted.stdout
    assert [o["state"] for o in project.orders()] == ["charged"]


def test_a_shrunken_snapshot_holds_deletions_and_deductions(project: Project) -> None:
    rows = [csv_row(f"mb-{n:03d}", days(100 + n)) for n in range(100)]
    project.snapshot(*rows)
    assert project.run(DAY).returncode == 0
    project.snapshot(*rows[:50], csv_row("mb-renew", days(4), auto_renew=True, balance="500.00"))
    held = project.run(days(1))
    assert held.returncode == 3
    assert "the snapshot shrank from 100 to 51 rows" in held.stdout
    assert project.orders() == []
    assert all("mb-renew" not in str(m["To"]) for m in project.emails())


def test_rejected_rows_lead_to_no_action_and_are_in_the_run_record(project: Project) -> None:
    project.snapshot(
        csv_row("mb-1", days(30)),
        csv_row("mb-1", days(-30)),
        csv_row("mb-2", date(2026, 2, 28)).replace("2026-02-28", "2026-02-30"),
    )
    assert project.run(DAY).returncode == 0
    assert project.emails() == []
    ledger = project.ledger()
    [run] = ledger.runs(1)
    ledger.close()
    rejected = json.loads(run["rejected_rows"])
    assert (
        len(rejected) == 2
        and "duplicate mailbox_id 'mb-1'" in rejected[0]
        and "2026-02-30" in rejected[1]
    )


def test_orders_export_for_invoicing(project: Project) -> None:
    project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
    assert project.run(DAY).returncode == 0
    month = date.today().strftime("%Y-%m")
    exported = project.cli("orders", "--month", month)
    lines = exported.stdout.splitlines()
    assert (
        lines[0]
        == "order_id,charged_at,account_id,mailbox_id,amount,currency,period_from,period_to,idempotency_key,reference"
    )
    assert lines[1].split(",")[2:8] == [
        "acct-mb-1",
        "mb-1",
        "120.00",
        "CNY",
        "2026-12-04",
        "2027-12-04",
    ]
    assert project.cli("orders", "--month", "2020-01").stdout.splitlines()[1:] == []


def test_deletion_through_http_provisioning_is_recorded_before_and_after(tmp_path: Path) -> None:
    with BackendPeer(default="deleted") as peer:
        extra = f"provisioning: {{backend: http, url: '{peer.url}', timeout: 5, attempts: 2, backoff: 0}}\n"
        project = Project(tmp_path, extra=extra)
        project.snapshot(csv_row("mb-1", days(-29)))
        assert project.run(DAY).returncode == 0
        project.export_again()
        assert project.run(days(1), env={"RENEWD_CRASH_AT": "after-delete"}).returncode == -9
        history = project.cli("history", "mb-1").stdout
        assert "delete        sending" in history
        assert project.run(days(1)).returncode == 0
    assert [key for key, _ in peer.requests] == ["renewd:delete:mb-1:2026-11-02"] * 2
    assert len(peer.effects) == 1
    history = project.cli("history", "mb-1").stdout
    assert "delete        done" in history and "ref-1" in history
    assert len([m for m in project.emails() if "已被删除" in str(m["Subject"])]) == 1


def test_an_older_schema_is_upgraded_in_place(project: Project) -> None:
    project.snapshot(csv_row("mb-1", days(30)))
    assert project.run(DAY).returncode == 0
    ledger = project.ledger()
    with ledger.engine.begin() as conn:  # make it look like a version 1 ledger, with its history
        conn.execute(text("DROP TABLE alerts"))
        conn.execute(text("DROP TABLE cycle_starts"))
        conn.execute(text("ALTER TABLE orders DROP COLUMN anchor_day"))
        conn.execute(text("ALTER TABLE orders DROP COLUMN renewed_on"))
        conn.execute(text("ALTER TABLE sightings DROP COLUMN snapshot_sha256"))
        conn.execute(update(meta).values(value="1"))
    ledger.close()
    assert project.run(days(1)).returncode == 0
    ledger = project.ledger()
    try:
        assert ledger.version() == SCHEMA_VERSION
        assert ledger.alert_once(DAY, "probe", "the table exists again")
        assert len(ledger.runs(5)) == 2  # the history survived
        with ledger.engine.connect() as conn:
            assert conn.execute(select(cycle_starts.c.began)).all() == []
            assert conn.execute(select(orders.c.anchor_day)).all() == []
    finally:
        ledger.close()


def test_held_steps_are_counted_by_reason_in_one_line_and_listed_in_full_apart(
    tmp_path: Path,
) -> None:
    """A first snapshot with thousands of long-expired mailboxes must not make an alert, a run
    record or `run`'s output of megabytes: a count per reason and the first five mailboxes;
    `runs --show N` has them all."""
    project = Project(tmp_path, extra="guards: {min_deletions: 100}\n")
    project.snapshot(*(csv_row(f"mb-old-{n:02d}", days(-30)) for n in range(12)))
    held = project.run(DAY)
    assert held.returncode == 3
    summary = (
        "12 deletions: first sight: renewd has not seen this mailbox expired on an earlier run "
        "of another snapshot (mb-old-00, mb-old-01, mb-old-02, mb-old-03, mb-old-04 and 7 more); "
        "the full list: renewd runs --show 1"
    )
    assert [line for line in held.stdout.splitlines() if "held:" in line] == [f"held: {summary}"]
    alert = next(line for line in held.stderr.splitlines() if "guard-held" in line)
    assert alert.endswith(f"held back: {summary}")
    assert summary in project.cli("runs").stdout
    shown = project.cli("runs", "--show", "1").stdout
    listed = [line.split()[0] for line in shown.splitlines() if line.startswith("mb-old-")]
    assert listed == [f"mb-old-{n:02d}" for n in range(12)]
    assert "held steps (12):" in shown


def as_version_3(project: Project) -> None:
    """Give the ledger's orders the shape they had in version 3: one order per (mailbox, cycle),
    no attempt number."""
    ledger = project.ledger()
    try:
        with ledger.engine.begin() as conn:
            conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="3"))
            if conn.dialect.name == "postgresql":
                conn.execute(text("DROP INDEX uq_order_live"))
                conn.execute(text("ALTER TABLE orders DROP CONSTRAINT uq_order_attempt"))
                conn.execute(text("ALTER TABLE orders DROP COLUMN attempt"))
                conn.execute(
                    text(
                        "ALTER TABLE orders ADD CONSTRAINT uq_order_cycle UNIQUE (mailbox_id, cycle)"
                    )
                )
                return
            conn.execute(text("ALTER TABLE orders RENAME TO orders_v4"))
            for index in ("uq_order_live", "ix_orders_account_id"):
                conn.execute(text(f"DROP INDEX {index}"))
            old = [c for c in orders.columns if c.name != "attempt"]
            Table(
                "orders",
                MetaData(),
                *(
                    Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable,
                           unique=c.unique, index=c.index)
                    for c in old
                ),
                UniqueConstraint("mailbox_id", "cycle", name="uq_order_cycle"),
            ).create(conn)  # fmt: skip
            names = ", ".join(c.name for c in old)
            conn.execute(text(f"INSERT INTO orders ({names}) SELECT {names} FROM orders_v4"))  # noqa: S608
            conn.execute(text("DROP TABLE orders_v4"))
    finally:
        ledger.close()


def order_constraints(project: Project) -> tuple[set[str], set[str], set[str]]:
    """The orders table's columns, unique constraints and indexes, by name."""
    ledger = project.ledger()
    try:
        with ledger.engine.connect() as conn:
            found = inspect(conn)
            return (
                {c["name"] for c in found.get_columns("orders")},
                {u["name"] or "" for u in found.get_unique_constraints("orders")},
                {i["name"] or "" for i in found.get_indexes("orders")},
            )
    finally:
        ledger.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest) -> str:
    return "" if request.param == "sqlite" else request.getfixturevalue("postgres").database()


def test_a_version_3_ledger_keeps_its_orders_as_first_attempts(
    tmp_path: Path, ledger_url: str
) -> None:
    """Upgraded in place: each order of version 3 is its cycle's first attempt, a declined one
    can be retried with a key of its own, and the database refuses a second live order."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for policy in (ROOT / "rules" / "lifecycle.yaml", ROOT / "examples" / "auto-renew-retry.yaml"):
        shutil.copy(policy, rules)
    with BackendPeer() as peer:
        peer.script["mb-declined"] = ["declined"]
        billing = f"{{backend: http, url: '{peer.url}', timeout: 5, attempts: 1, backoff: 0}}"
        project = Project(tmp_path, billing=billing, rules=rules, ledger=ledger_url)
        rows = [
            csv_row(mb, days(3), auto_renew=True, balance="500.00")
            for mb in ("mb-charged", "mb-declined")
        ]
        project.snapshot(*rows)
        assert project.run(DAY).returncode == 0
        as_version_3(project)
        assert order_constraints(project)[1] >= {"uq_order_cycle"}
        project.snapshot(*rows)
        assert project.run(days(2)).returncode == 0  # the retry the day before expiry
    columns, uniques, indexes = order_constraints(project)
    assert "attempt" in columns and "uq_order_live" in indexes
    assert "uq_order_cycle" not in uniques and "uq_order_attempt" in uniques
    assert sorted((o["mailbox_id"], o["attempt"], o["state"]) for o in project.orders()) == [
        ("mb-charged", 1, "charged"),
        ("mb-declined", 1, "declined"),
        ("mb-declined", 2, "charged"),
    ]
    assert [key for key, _ in peer.requests][-1] == "renewd:charge:mb-declined:2026-12-04:2"
    ledger = project.ledger()
    try:
        first = next(o for o in project.orders() if o["mailbox_id"] == "mb-charged")
        second = {**first, "id": None, "attempt": 2, "state": "pending", "idempotency_key": "x"}
        with pytest.raises(IntegrityError), ledger.engine.begin() as conn:
            conn.execute(insert(orders).values({k: v for k, v in second.items() if k != "id"}))
    finally:
        ledger.close()


def test_an_upgrade_that_fails_midway_leaves_the_ledger_as_it_was(
    tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migration's DDL and the version it writes are one transaction, on SQLite as well (its
    Python driver would otherwise run each DDL statement on its own)."""
    project = Project(tmp_path, ledger=ledger_url)
    project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
    assert project.run(DAY).returncode == 0
    as_version_3(project)
    real = schema.MIGRATIONS[4]

    def fails_after(conn: Connection) -> None:
        real(conn)
        raise RuntimeError("the machine lost power here")

    monkeypatch.setitem(schema.MIGRATIONS, 4, fails_after)
    ledger = project.ledger()
    try:
        with pytest.raises(RuntimeError):
            ledger.upgrade()
        assert ledger.version() == 3
    finally:
        ledger.close()
    columns, uniques, _ = order_constraints(project)
    assert "attempt" not in columns and "uq_order_cycle" in uniques
    ledger = project.ledger()
    try:
        with ledger.engine.connect() as conn:
            kept = conn.execute(text("SELECT mailbox_id, state FROM orders")).all()
    finally:
        ledger.close()
    assert [tuple(row) for row in kept] == [("mb-1", "charged")]


def test_an_upgrade_in_process_leaves_the_ledgers_made_after_it_as_new(
    tmp_path: Path, ledger_url: str
) -> None:
    """Upgrading one ledger must not change the schema the process creates next: a new ledger
    still renews a mailbox cycle after cycle (a constraint over `mailbox_id` alone, left behind
    by the upgrade, once refused its second renewal)."""
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = Project(tmp_path / "old", ledger=ledger_url)
    old.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
    assert old.run(DAY).returncode == 0
    as_version_3(old)
    ledger = old.ledger()
    try:
        ledger.upgrade()
        assert ledger.version() == schema.SCHEMA_VERSION
    finally:
        ledger.close()
    new = Project(tmp_path / "new")
    config, policy = load(new.config)
    for expires in (days(3), add_months(days(3), 12)):
        new.snapshot(csv_row("mb-1", expires, auto_renew=True, balance="500.00"))
        day = expires - timedelta(days=3)
        assert run_day(config, policy, new.root / "snapshot.csv", day).status == "done"
    assert [o["state"] for o in new.orders()] == ["charged", "charged"]
