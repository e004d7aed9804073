"""Bounces end to end: emails leave through the real SMTP peer each with its own return path; DSNs
in the shapes Postfix, Exim and Gmail send come back into a Maildir; `renewd bounces` and
`serve` record them, move the files aside, keep what is malformed, and count it all."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from peers import mta
from peers.ports import free_port
from peers.smtp import PASSWORD, SmtpPeer

from support import Project, Served, csv_row, get, until

DAY = date(2026, 12, 1)
VERP = "bounces+{id}@bounce.example.com"
ENV = {"RENEWD_TEST_SMTP_PASSWORD": PASSWORD}


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpPeer]:
    with SmtpPeer(tmp_path) as peer:
        yield peer


def bounce_project(tmp_path: Path, smtp: SmtpPeer, ledger: str = "", extra: str = "") -> Project:
    mta.maildir(tmp_path / "bounces")
    return Project(
        tmp_path,
        email=smtp.settings(return_path=VERP),
        ledger=ledger,
        snapshot="snapshots/mailboxes-{date}.csv",
        extra="receipts: {bounces: bounces, poll_seconds: 1}\n" + extra,
    )


def return_paths(smtp: SmtpPeer) -> dict[str, str]:
    """Each recipient's envelope sender, as the SMTP peer saw it."""
    return {rcpt[0]: mail_from for mail_from, rcpt in smtp.handler.envelopes}


def delivery(project: Project, mailbox_id: str) -> str:
    """The email's delivery state and code, as the ledger holds them."""
    ledger = project.ledger()
    try:
        row = next(r for r in ledger.mailbox_history(mailbox_id) if r["channel"] == "email")
    finally:
        ledger.close()
    return f"{row['delivery']} {row['delivery_code']}".strip()


def test_each_email_leaves_with_its_own_return_path_and_no_return_path_header(
    tmp_path: Path, smtp: SmtpPeer
) -> None:
    project = bounce_project(tmp_path, smtp)
    project.snapshot(
        *(csv_row(f"mb-{n}", DAY + timedelta(days=30), phone="") for n in range(3)), day=DAY
    )
    assert project.run(DAY, env=ENV).returncode == 0
    ledger = project.ledger()
    try:
        ids = {f"mb-{n}": ledger.mailbox_history(f"mb-{n}")[0]["id"] for n in range(3)}
    finally:
        ledger.close()
    assert return_paths(smtp) == {
        f"mb-{n}@example.cn": f"bounces+{ids[f'mb-{n}']}@bounce.example.com" for n in range(3)
    }
    assert all(message["Return-Path"] is None for message in smtp.handler.messages)
    assert {str(m["From"]) for m in smtp.handler.messages} == {
        "Renewals <renewals@mail.example.com>"
    }


def test_bounces_are_recorded_moved_aside_and_a_second_reading_changes_nothing(
    tmp_path: Path, smtp: SmtpPeer, ledger: str
) -> None:
    project = bounce_project(tmp_path, smtp, ledger)
    project.snapshot(
        *(csv_row(f"mb-{n}", DAY + timedelta(days=30), phone="") for n in range(5)), day=DAY
    )
    assert project.run(DAY, env=ENV).returncode == 0
    verp = return_paths(smtp)
    folder = tmp_path / "bounces"
    hard = mta.postfix(verp["mb-0@example.cn"], "mb-0@example.cn")
    mta.deliver(folder, hard)
    mta.deliver(folder, mta.exim(verp["mb-1@example.cn"], "mb-1@example.cn", "4.0.0"))
    mta.deliver(folder, mta.gmail(verp["mb-2@example.cn"], "mb-2@example.cn"))
    delay = mta.postfix(
        verp["mb-3@example.cn"], "mb-3@example.cn", "4.4.1", "X-Postfix; timed out", "delayed"
    )
    mta.deliver(folder, delay)
    mta.deliver(folder, mta.auto_reply(verp["mb-4@example.cn"]))
    mta.deliver(folder, mta.postfix("newsletter@elsewhere.example", "x@example.org"))
    os.symlink("/etc/passwd", folder / "new" / "planted")
    os.mkdir(folder / "new" / "a-folder")

    read = project.cli("bounces")
    assert read.returncode == 0, read.stderr
    assert read.stdout.splitlines()[:4] == [
        f"{folder}: 8 files: 4 recorded, 1 unknown, 3 malformed",
        "  email bounced: 2",
        "  email delayed: 1",
        "  email soft-bounced: 1",
    ]
    kept = read.stderr.splitlines()
    assert len(kept) == 3 and all("kept in" in line and ".malformed/new/" in line for line in kept)
    assert any("not a delivery status notification" in line for line in kept)
    assert any("planted: a symbolic link, not read" in line for line in kept)
    assert any("a-folder: not a regular file, not read" in line for line in kept)
    assert [delivery(project, f"mb-{n}") for n in range(5)] == [
        "bounced 5.1.1",
        "soft-bounced 4.0.0",
        "bounced 5.1.1",
        "delayed 4.4.1",
        "",
    ]
    history = project.cli("history", "mb-0").stdout
    assert re.search(r"notify:email\s+done\s+1\s+bounced 5\.1\.1\s+<\S+>: 550 5\.1\.1", history)
    assert "Recipient address rejected: User unknown" in history
    assert os.listdir(folder / "new") == []
    assert len(os.listdir(folder / ".malformed" / "new")) == 3
    assert all(name.endswith(":2,S") for name in os.listdir(folder / "cur"))
    assert len(os.listdir(folder / "cur")) == 5

    assert project.cli("bounces").stdout.startswith(f"{folder}: 0 files\n")
    mta.deliver(folder, hard)  # the same bounce again, then the delayed one's final failure
    mta.deliver(folder, mta.postfix(verp["mb-3@example.cn"], "mb-3@example.cn", "5.4.7"))
    assert project.cli("bounces").stdout.startswith(f"{folder}: 2 files: 1 recorded, 1 unchanged")
    assert delivery(project, "mb-3") == "bounced 5.4.7"


def test_serve_polls_the_maildir_and_says_when_a_final_warning_did_not_arrive(
    tmp_path: Path, smtp: SmtpPeer, served: list[Served]
) -> None:
    port = free_port()
    project = bounce_project(tmp_path, smtp, extra=f"serve: {{listen: '127.0.0.1:{port}'}}\n")
    expired = DAY - timedelta(days=29)  # today is D+29: the last grace reminder before deletion
    project.snapshot(csv_row("mb-late", expired, phone=""), day=DAY)
    daemon = Served(project, "2026-12-01T10:00:00+08:00", ENV)
    served.append(daemon)
    daemon.expect("run 1 for 2026-12-01 done")
    verp = return_paths(smtp)["mb-late@example.cn"]
    mta.deliver(tmp_path / "bounces", mta.gmail(verp, "mb-late@example.cn"))
    warned = daemon.expect("did not arrive")
    assert warned.endswith(
        "the final warning to mb-late before its deletion on 2026-12-02 (grace-reminder D+29, "
        "email) did not arrive: bounced 5.1.1: 550-5.1.1 The email account that you tried to "
        "reach does not exist. Please try 550-5.1.1 double-checking the recipient's email "
        "address for typos or 550 5.1.1 unnecessary spaces. "
        "https://support.google.com/mail/?p=NoSuchUser - gsmtp"
    )
    until(lambda: not os.listdir(tmp_path / "bounces" / "new"), "the bounce moved aside")
    metrics = get(port, "/metrics")[1]
    assert 'renewd_bounces_total{outcome="recorded"} 1.0' in metrics
    assert 'renewd_deliveries_total{channel="email",status="bounced"} 1.0' in metrics
    assert 'renewd_undelivered_final_warnings_total{channel="email"} 1.0' in metrics
    assert daemon.stop() == 0


@pytest.mark.parametrize(
    ("extra", "email", "message"),
    [
        ("", "smtp", "no Maildir to read: pass --maildir PATH or set receipts.bounces"),
        ("receipts: {bounces: nowhere}\n", "smtp", "nowhere: cannot read it as a Maildir"),
        ("receipts: {bounces: bounces}\n", "plain", "bounces cannot be matched to messages"),
    ],
)
def test_bounces_that_cannot_be_read_are_one_line_and_exit_2(
    tmp_path: Path, smtp: SmtpPeer, extra: str, email: str, message: str
) -> None:
    mta.maildir(tmp_path / "bounces")
    settings = smtp.settings(return_path=VERP) if email == "smtp" else smtp.settings()
    project = Project(tmp_path, email=settings, extra=extra)
    project.snapshot(csv_row("mb-0", DAY + timedelta(days=30), phone=""))
    assert project.run(DAY, env=ENV).returncode == 0
    read = project.cli("bounces", env=ENV)
    assert read.returncode == 2
    assert message in read.stderr and len(read.stderr.splitlines()) == 1
