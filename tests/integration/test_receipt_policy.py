"""A policy that acts on receipts, end to end: the example policy (examples/policies/receipts)
with the real SMTP peer, the project's Twilio peer posting signed callbacks to `serve`, and DSNs
dropped into the bounce Maildir. Its deletion warning goes by SMS where the email bounced; a
deletion waits while no warning of the cycle arrived, and happens once one does."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from peers import mta
from peers.ports import free_ports
from peers.smtp import PASSWORD, SmtpPeer
from peers.twilio import TOKEN, TwilioPeer, twilio_settings

from support import ROOT, Project, Served, csv_row, get

POLICY = ROOT / "examples" / "policies" / "receipts"
EXPIRED = date(2026, 11, 4)  # 2026-12-01 is D+27
ENV = {"RENEWD_TEST_SMTP_PASSWORD": PASSWORD, "RENEWD_TEST_TWILIO_TOKEN": TOKEN}
PHONES = {"mb-ok": "+8613700137000", "mb-sms": "+8613800138000", "mb-lost": "+8613900139000"}
MAILBOXES = ("mb-ok", "mb-sms", "mb-lost", "mb-nophone")
FREE = 20  # mailboxes no rule acts on


def day(offset: int) -> date:
    return EXPIRED + timedelta(days=offset)


class World:
    """The example policy's project, its peers, and one export per day."""

    def __init__(self, tmp_path: Path, smtp: SmtpPeer, twilio: TwilioPeer) -> None:
        self.smtp, self.twilio, self.folder = smtp, twilio, mta.maildir(tmp_path / "bounces")
        self.port, self.receiving = free_ports(2)
        self.deleted: set[str] = set()  # gone from the next export
        self.project = Project(
            tmp_path,
            rules=POLICY,
            email=smtp.settings(return_path="bounces+{id}@bounce.example.com"),
            sms=twilio_settings(twilio.url),
            snapshot="snapshots/mailboxes-{date}.csv",
            extra=f"serve: {{listen: '127.0.0.1:{self.port}'}}\n"
            f"receipts: {{listen: '127.0.0.1:{self.receiving}', bounces: bounces}}\n",
        )

    def export(self, offset: int) -> date:
        """The day's snapshot: what was deleted is gone from it, free mailboxes make up the rest
        (so two deletions do not shrink it past the guard), and a signup of the day makes each
        export differ, as real ones do."""
        rows = [
            csv_row(m, EXPIRED, phone=PHONES.get(m, "")) for m in MAILBOXES if m not in self.deleted
        ]
        later = EXPIRED + timedelta(days=400)
        free = [csv_row(f"free-{n}", later, edition="free") for n in range(FREE)]
        signup = csv_row(f"signup-{offset}", later, edition="free")
        self.project.snapshot(*rows, *free, signup, day=day(offset))
        return day(offset)

    def run(self, offset: int) -> list[dict[str, str]]:
        done = self.project.run(self.export(offset), "--format", "jsonl", env=ENV)
        assert done.returncode == 0, done.stderr
        records = [json.loads(line) for line in done.stdout.splitlines()]
        self.deleted |= {r["mailbox_id"] for r in records if r["action"] == "delete"}
        return records

    def serve(self, offset: int, served: list[Served]) -> Served:
        self.export(offset)
        daemon = Served(self.project, f"{day(offset).isoformat()}T10:00:00+08:00", ENV)
        served.append(daemon)
        daemon.expect(f"for {day(offset)} done")
        return daemon

    def bounce(self, *mailboxes: str) -> str:
        """The last email to each mailbox bounces (a Gmail-style report); `renewd bounces`."""
        sent = {rcpt[0]: mail_from for mail_from, rcpt in self.smtp.handler.envelopes}
        for mailbox in mailboxes:
            address = f"{mailbox}@example.cn"
            mta.deliver(self.folder, mta.gmail(sent[address], address))
        read = self.project.cli("bounces", env=ENV)
        assert read.returncode == 0, read.stderr
        return read.stdout

    def sms_status(self, mailbox: str, status: str, code: str = "") -> None:
        sid = self.twilio.sids(PHONES[mailbox])[-1]
        listener = f"127.0.0.1:{self.receiving}"
        assert self.twilio.post_status(sid, status, listener, error_code=code) == 200


def taken(records: list[dict[str, str]], action: str) -> list[tuple[str, str]]:
    return sorted((r["mailbox_id"], r.get("channel", "")) for r in records if r["action"] == action)


def test_the_example_policy_warns_by_sms_when_email_bounced_and_holds_unwarned_deletions(
    tmp_path: Path, served: list[Served]
) -> None:
    with SmtpPeer(tmp_path) as smtp, TwilioPeer() as twilio:
        world = World(tmp_path, smtp, twilio)
        checked = world.project.cli("check", env=ENV)
        assert checked.returncode == 0, checked.stderr

        warned = world.run(27)  # the deletion warning, by email, to everyone
        assert taken(warned, "notify") == [(m, "email") for m in sorted(MAILBOXES)]
        read = world.bounce("mb-sms", "mb-lost", "mb-nophone")
        assert read.count("before its deletion on 2026-12-04 (deletion-warning D+27") == 3

        daemon = world.serve(28, served)  # by SMS where the email bounced and there is a phone
        assert [(r["mailbox_id"], r["channel"]) for r in _sent(world, 28)] == [
            ("mb-lost", "sms"),
            ("mb-sms", "sms"),
        ]
        world.sms_status("mb-sms", "delivered")
        world.sms_status("mb-lost", "undelivered", "30003")
        metrics = get(world.port, "/metrics")[1]
        assert 'renewd_undelivered_final_warnings_total{channel="sms"} 1.0' in metrics
        assert daemon.stop() == 0

        deleted = world.run(30)  # catches up D+29 too
        assert taken(deleted, "delete") == [("mb-ok", ""), ("mb-sms", "")]

        daemon = world.serve(44, served)  # held for review: one more try where nothing arrived
        assert sorted((r["mailbox_id"], r["channel"]) for r in _sent(world, 44)) == [
            ("mb-lost", "email"),
            ("mb-lost", "sms"),
            ("mb-nophone", "email"),
        ]
        world.sms_status("mb-lost", "undelivered", "30005")
        assert daemon.stop() == 0
        world.bounce("mb-lost")  # mb-nophone's email arrives this time

        after = world.run(60)
        assert taken(after, "delete") == [("mb-nophone", "")]  # never mb-lost: a person decides
    history = world.project.cli("history", "mb-lost").stdout
    assert "deletion" not in history.replace("deletion-warning", "")
    assert "undelivered 30005" in history and "bounced 5.1.1" in history


def _sent(world: World, offset: int) -> list[dict[str, str]]:
    """The messages the day's run (under serve) sent, from the ledger."""
    ledger = world.project.ledger()
    try:
        rows = [
            row
            for mailbox in MAILBOXES
            for row in ledger.mailbox_history(mailbox)
            if row["day"] == day(offset) and row["kind"] == "notify" and row["state"] == "done"
        ]
    finally:
        ledger.close()
    return sorted(({"mailbox_id": r["mailbox_id"], "channel": r["channel"]} for r in rows), key=str)
