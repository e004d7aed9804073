"""Run records stay true: a killed run shows what it read and did, and the deletion guard wants
an earlier sighting in another snapshot, not an earlier `--date` on the same file."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from support import Project, csv_row

DAY = date(2026, 12, 1)


def days(n: int) -> date:
    return DAY + timedelta(days=n)


def test_a_killed_run_shows_what_it_read_and_did(tmp_path: Path) -> None:
    """One sending slot, so that at most two messages are out unrecorded when it is killed."""
    email = "{backend: file, path: out/mail, from: renewals@mail.example.com, concurrency: 1}"
    project = Project(tmp_path, email=email)
    project.snapshot(
        csv_row("mb-renew", days(3), auto_renew=True, balance="500.00", phone=""),
        *(csv_row(f"mb-{n}", days(30), phone="") for n in range(10)),
    )
    killed = project.run(DAY, env={"RENEWD_CRASH_AT": "after-send#6"})
    assert killed.returncode == -9
    assert project.run(DAY).returncode == 0
    ledger = project.ledger()
    try:
        first = next(row for row in ledger.runs(5) if row["id"] == 1)
    finally:
        ledger.close()
    assert first["status"] == "crashed"
    assert first["rows_read"] == 11
    counts = json.loads(first["counts"])
    assert counts["deduct:charged"] == 1, counts
    assert counts["notify:email:sent"] >= 6 - 2, counts  # all but what was in flight
    shown = project.cli("runs").stdout
    assert "deduct:charged=1" in shown.splitlines()[-1], shown


def test_two_dates_on_one_snapshot_do_not_make_a_deletion(tmp_path: Path) -> None:
    """The day before deletion and the deletion day, both run on the same file: renewd has not
    seen the mailbox expired in two exports, so it holds; the next export lets it go."""
    project = Project(tmp_path)
    rows = [csv_row("mb-gone", days(-29), phone=""), csv_row("mb-other", days(200), phone="")]
    project.snapshot(*rows)
    assert project.run(DAY).returncode == 0  # D+29: seen expired
    held = project.run(days(1))  # D+30 on the very same file
    assert held.returncode == 3, held.stdout + held.stderr
    assert "1 deletion: first sight" in held.stdout and "(mb-gone)" in held.stdout
    project.snapshot(*rows, csv_row("mb-new", days(300), phone=""))  # the next real export
    assert project.run(days(2)).returncode == 0
    assert project.scalar("SELECT count(*) FROM deletions WHERE state = 'done'") == 1
