"""Delivery against real peers: aiosmtpd with STARTTLS and AUTH, and Twilio-speaking HTTP servers."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from peers.smtp import PASSWORD, SmtpPeer
from peers.twilio import ACCOUNT, OK, TOKEN, TwilioPeer, twilio_settings
from renewd.act.pages import Marks
from renewd.act.run import run_day
from renewd.cli.options import load
from renewd.delivery.senders.base import Outbound, Result, SendWindow, Status, email_message
from renewd.delivery.senders.smtp import SmtpSender
from renewd.state.claims import Mark, Tenure
from renewd.state.ledger import Ledger

from support import Project, csv_row

DAY = date(2026, 12, 1)
REMIND = DAY + timedelta(days=30)
ENV = {"RENEWD_TEST_SMTP_PASSWORD": PASSWORD, "RENEWD_TEST_TWILIO_TOKEN": TOKEN}


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpPeer]:
    with SmtpPeer(tmp_path) as peer:
        yield peer


def history(project: Project, mailbox_id: str) -> str:
    return project.cli("history", mailbox_id).stdout


# -- email ----------------------------------------------------------------------------------


def test_email_arrives_over_starttls_with_auth_as_proper_mime(
    tmp_path: Path, smtp: SmtpPeer
) -> None:
    project = Project(tmp_path, email=smtp.settings())
    project.snapshot(csv_row("mb-1", REMIND, phone=""))
    result = project.run(DAY)
    assert result.returncode == 0, result.stdout + result.stderr
    [message] = smtp.handler.messages
    assert smtp.handler.logins == ["renewd"]
    assert smtp.handler.envelopes == [("renewals@mail.example.com", ["mb-1@example.cn"])]
    assert str(message["Subject"]) == "您的邮箱 mb-1 将在 30 天后到期，请及时续费"
    assert str(message["From"]) == "Renewals <renewals@mail.example.com>"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and "2026年12月31日" in plain.get_content()
    assert html is not None and "<html" in html.get_content()
    assert message["Date"] and message["Message-ID"]
    assert str(message["Message-ID"]) in history(project, "mb-1")


def test_connections_are_reused_across_messages(tmp_path: Path, smtp: SmtpPeer) -> None:
    project = Project(tmp_path, email=smtp.settings(connections=2))
    project.snapshot(*(csv_row(f"mb-{n:02d}", REMIND, phone="") for n in range(12)))
    assert project.run(DAY).returncode == 0
    assert len(smtp.handler.messages) == 12
    assert len(smtp.handler.logins) <= 2  # one login per connection


@pytest.mark.parametrize(
    ("mailbox_id", "state", "error"),
    [
        ("rcpt550", "failed", "550 5.1.1 No such user here"),
        ("data554", "failed", "554 5.7.1 Message rejected as spam"),
        ("rcpt450", "pending", "450 4.2.1 Mailbox busy, try later"),
        ("data451", "pending", "451 4.3.0 Temporary failure, try later"),
        ("drop", "pending", "SMTPServerDisconnected"),
    ],
)
def test_smtp_failures_are_recorded_by_kind(
    tmp_path: Path, smtp: SmtpPeer, mailbox_id: str, state: str, error: str
) -> None:
    project = Project(tmp_path, email=smtp.settings())
    project.snapshot(csv_row(mailbox_id, REMIND, phone=""), csv_row("mb-ok", REMIND, phone=""))
    assert project.run(DAY).returncode == 0
    line = next(
        line for line in history(project, mailbox_id).splitlines() if "notify:email" in line
    )
    assert f" {state} " in line and error in line
    attempts = smtp.handler.seen[f"rcpt:{mailbox_id}@example.cn"]
    assert attempts == (1 if state == "failed" else 2)  # permanent: once; temporary: retried
    assert [str(m["To"]) for m in smtp.handler.messages] == ["mb-ok@example.cn"]


@pytest.mark.parametrize("mailbox_id", ["once-rcpt450", "once-data451", "once-drop", "once-slow"])
def test_temporary_failures_are_retried_and_delivered_once(
    tmp_path: Path, smtp: SmtpPeer, mailbox_id: str
) -> None:
    project = Project(tmp_path, email=smtp.settings())
    project.snapshot(csv_row(mailbox_id, REMIND, phone=""))
    assert project.run(DAY).returncode == 0
    assert [str(m["To"]) for m in smtp.handler.messages] == [f"{mailbox_id}@example.cn"]
    assert " done " in history(project, mailbox_id)


def test_a_message_left_pending_goes_out_on_the_next_run(tmp_path: Path) -> None:
    project = Project(
        tmp_path,
        email="{backend: smtp, host: 127.0.0.1, port: 9, security: none, from: r@example.com, attempts: 1, timeout: 1}",
    )
    project.snapshot(csv_row("mb-1", REMIND, phone=""))
    assert project.run(DAY).returncode == 0
    assert " pending " in history(project, "mb-1")
    with SmtpPeer(tmp_path) as smtp:
        project = Project(tmp_path, email=smtp.settings())
        assert project.run(DAY).returncode == 0
    assert [str(m["To"]) for m in smtp.handler.messages] == ["mb-1@example.cn"]


def test_bad_credentials_stop_the_channel_once(
    tmp_path: Path, smtp: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENEWD_TEST_SMTP_PASSWORD", "wrong")
    project = Project(tmp_path, email=smtp.settings(connections=1))
    project.snapshot(*(csv_row(f"mb-{n}", REMIND) for n in range(5)))
    result = project.run(DAY)
    assert result.stdout.count("authentication failed") == 1
    assert "notify:email:stop            1" in result.stdout
    assert len(smtp.handler.logins) == 2  # one connection: aiosmtplib tries PLAIN, then LOGIN
    assert smtp.handler.messages == []
    assert len(project.sms()) == 5  # the other channel is not affected


def test_an_untrusted_certificate_stops_the_channel(tmp_path: Path, smtp: SmtpPeer) -> None:
    project = Project(tmp_path, email=smtp.settings(ca_file=str(tmp_path / "nothing-trusted.pem")))
    (tmp_path / "nothing-trusted.pem").write_text(trustme_other_ca(), encoding="utf-8")
    project.snapshot(csv_row("mb-1", REMIND, phone=""))
    result = project.run(DAY)
    assert "TLS failed" in result.stdout and "certificate verify failed" in result.stdout
    assert smtp.handler.messages == []


def trustme_other_ca() -> str:
    import trustme

    return trustme.CA().cert_pem.bytes().decode()


def test_header_injection_is_refused() -> None:
    message = Outbound(
        "k", "email", "a@example.com", "en", subject="Hi\r\nBcc: victim@example.com", text="x"
    )
    with pytest.raises(ValueError, match="CR or LF"):
        email_message(message, "renewals@example.com")


def test_a_password_in_the_config_is_refused(tmp_path: Path, smtp: SmtpPeer) -> None:
    project = Project(tmp_path, email=smtp.settings(password="hunter2"))
    result = project.cli("check")
    assert result.returncode == 1
    assert (
        "do not write password into the config" in result.stderr and "hunter2" not in result.stderr
    )


# -- SMS ------------------------------------------------------------------------------------


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    with TwilioPeer() as peer:
        yield peer


def sms_project(tmp_path: Path, url: str, **extra: object) -> Project:
    return Project(tmp_path, sms=twilio_settings(url, **extra))


def test_sms_goes_to_twilio_with_status_callback(tmp_path: Path, twilio: TwilioPeer) -> None:
    project = sms_project(tmp_path, twilio.url)
    project.snapshot(csv_row("mb-1", REMIND, phone=OK))
    assert project.run(DAY).returncode == 0
    [request] = twilio.requests
    assert request["auth"] == f"{ACCOUNT}:{TOKEN}"
    assert request["fields"]["To"] == OK and request["fields"]["From"] == "+14155550000"
    assert request["fields"]["StatusCallback"] == "https://renewd.example.com/twilio/status"
    assert request["fields"]["Body"].startswith("【Example Mail】")
    assert "SM" in history(project, "mb-1")


def test_429_is_retried_after_the_time_twilio_asks(tmp_path: Path, twilio: TwilioPeer) -> None:
    project = sms_project(tmp_path, twilio.url)
    project.snapshot(csv_row("mb-1", REMIND, phone="+14155550101"))
    assert project.run(DAY).returncode == 0
    times = [r["at"] for r in twilio.requests]
    assert len(times) == 3
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))
    assert " done " in next(line for line in history(project, "mb-1").splitlines() if "sms" in line)


@pytest.mark.parametrize(
    ("phone", "requests", "state", "error"),
    [
        ("+14155550102", 1, "failed", "code 21211"),
        ("+14155550103", 2, "done", ""),
        ("+14155550104", 2, "pending", "it may have been sent"),
        ("+15551234", 0, "failed", "not a valid E.164 number"),
    ],
)
def test_sms_outcomes(
    tmp_path: Path, twilio: TwilioPeer, phone: str, requests: int, state: str, error: str
) -> None:
    project = sms_project(tmp_path, twilio.url)
    project.snapshot(csv_row("mb-1", REMIND, phone=phone))
    assert project.run(DAY).returncode == 0
    assert len(twilio.requests) == requests
    line = next(line for line in history(project, "mb-1").splitlines() if "notify:sms" in line)
    assert f" {state} " in line and error in line


def test_bad_twilio_credentials_stop_the_channel_after_one_request(
    tmp_path: Path, twilio: TwilioPeer
) -> None:
    project = sms_project(tmp_path, twilio.url)
    project.snapshot(*(csv_row(f"mb-{n}", REMIND, phone="+14155550105") for n in range(4)))
    result = project.run(DAY)
    assert len(twilio.requests) == 1
    assert result.stdout.count("HTTP 401 code 20003") == 1
    assert all(
        " pending " in line
        for line in history(project, "mb-2").splitlines()
        if "notify:sms" in line
    )


def test_sms_waits_outside_its_hours_and_email_does_not(tmp_path: Path, twilio: TwilioPeer) -> None:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    closed = f"{(now + timedelta(hours=2)).strftime('%H:00')}-{(now + timedelta(hours=3)).strftime('%H:00')}"
    project = sms_project(tmp_path, twilio.url, window=closed)
    project.snapshot(csv_row("mb-1", REMIND, phone=OK))
    result = project.run(DAY)
    assert "notify:sms:deferred          1" in result.stdout
    assert twilio.requests == [] and len(project.emails()) == 1
    project = sms_project(tmp_path, twilio.url)
    assert project.run(DAY).returncode == 0
    assert len(twilio.requests) == 1 and len(project.emails()) == 1


@pytest.mark.parametrize(
    ("window", "at", "open_"),
    [
        ("09:00-21:00", "08:59", False),
        ("09:00-21:00", "09:00", True),
        ("09:00-21:00", "20:59", True),
        ("09:00-21:00", "21:00", False),
        ("22:00-06:00", "23:30", True),
        ("22:00-06:00", "05:59", True),
        ("22:00-06:00", "12:00", False),
        ("00:00-24:00", "23:59", True),
    ],
)
def test_send_window(window: str, at: str, open_: bool) -> None:
    moment = datetime.fromisoformat(f"2026-12-01T{at}:00+08:00")
    assert SendWindow.parse(window).open_at(moment) is open_


# -- Twilio's own contract, served by Prism --------------------------------------------------


def test_requests_satisfy_twilios_published_api(tmp_path: Path, prism: str) -> None:
    project = sms_project(tmp_path, prism)
    project.snapshot(
        csv_row("mb-1", REMIND, phone=OK), csv_row("mb-2", REMIND, phone="+8613800138000")
    )
    assert project.run(DAY).returncode == 0
    lines = [
        line
        for mb in ("mb-1", "mb-2")
        for line in history(project, mb).splitlines()
        if "notify:sms" in line
    ]
    assert len(lines) == 2 and all(" done " in line and "SMaaaaaaaa" in line for line in lines)


def test_prism_refuses_what_twilio_would(tmp_path: Path, prism: str) -> None:
    """The contract peer is not a yes-machine: a malformed account SID is a 4xx, recorded as failed."""
    project = Project(tmp_path, sms=twilio_settings(prism, account_sid="ACnot-a-valid-sid"))
    project.snapshot(csv_row("mb-1", REMIND, phone=OK))
    assert project.run(DAY).returncode == 0
    line = next(line for line in history(project, "mb-1").splitlines() if "notify:sms" in line)
    assert " failed " in line and "HTTP 4" in line


@pytest.fixture(scope="session")
def prism() -> Iterator[str]:
    from peers.prism import running_prism

    with running_prism() as url:
        yield url


def test_a_ledger_error_while_sending_fails_the_run_and_loses_nothing(
    tmp_path: Path, smtp: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slots commit while other slots send: the first ledger error must stop them all and end
    the run (it once left slots waiting for a commit that never came), and the next run must
    deliver what is left."""
    project = Project(tmp_path, email=smtp.settings(connections=3))
    project.snapshot(*(csv_row(f"mb-{n}", REMIND, phone="") for n in range(30)))
    config, policy = load(project.config)
    calls = itertools.count(1)
    real = Ledger.mark_many

    def failing(self: Ledger, changes: Any, tenure: Any) -> Any:
        if next(calls) == 4:
            raise OSError("disk full")
        return real(self, changes, tenure)

    monkeypatch.setattr(Ledger, "mark_many", failing)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            run_day(config, policy, project.root / "snapshot.csv", DAY)
        except BaseException as exc:  # the run's own error, to check below
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the run hung after the ledger error"
    assert [str(e) for e in outcome] == ["disk full"]
    monkeypatch.setattr(Ledger, "mark_many", real)
    assert project.run(DAY).returncode == 0
    delivered = [str(m["To"]) for m in smtp.handler.messages]
    assert set(delivered) == {f"mb-{n}@example.cn" for n in range(30)}
    assert len(delivered) - 30 <= 2 * 3  # at most two per slot were out when it failed


def test_a_stopped_ledger_writer_releases_the_slots_waiting_for_it() -> None:
    """A slot waits for its commit in a `finally`; if the writer stops first, that wait must
    end, or the run never does."""

    async def scenario() -> None:
        marks = Marks(Ledger.__new__(Ledger), Tenure(1, 1))  # never reached: nothing is committed
        writer = asyncio.create_task(marks.write())
        await asyncio.sleep(0)  # let the writer start waiting for work
        queued = marks.submit([Mark(1, "sending", 0)])
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await marks.wait(queued)

    asyncio.run(scenario())


def test_a_subject_the_email_package_cannot_write_fails_that_message_only(
    tmp_path: Path, smtp: SmtpPeer
) -> None:
    """A header with a control character that hides another header is this message's failure:
    not retried eight times, and the connection goes on to the next message."""
    settings = yaml.safe_load(smtp.settings())
    sender = SmtpSender(settings, tmp_path, "email")
    hidden = Outbound("k1", "email", "a@example.com", "en", "Hello\x0bXx: y", "text")
    fine = Outbound("k2", "email", "b@example.com", "en", "Hello", "text")

    async def both() -> list[Result]:
        try:
            return [await sender.send(hidden), await sender.send(fine)]
        finally:
            await sender.close()

    refused, sent = asyncio.run(both())
    assert refused.status is Status.FAILED and "cannot write the message" in refused.error
    assert sent.status is Status.SENT
    assert [str(m["To"]) for m in smtp.handler.messages] == ["b@example.com"]
