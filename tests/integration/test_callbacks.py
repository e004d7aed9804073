"""Twilio's status callbacks: the project's Twilio peer posts signed callbacks to a running
`renewd serve` (good, forged and missing signatures, a replay, statuses out of order), on
SQLite and PostgreSQL; then the callback listener alone against hostile clients."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from peers.ports import free_ports
from peers.twilio import ACCOUNT, OK, TOKEN, TwilioPeer, post_form, sign, twilio_settings
from renewd.config.plugins import Secret
from renewd.core.delivery import Receipt
from renewd.service.callbacks import Callbacks

from support import Project, Served, csv_row, exchange, get, until

DAY = date(2026, 12, 1)
URL = "https://renewd.example.com/twilio/status"  # what Twilio is told, behind a proxy
OTHER = "+8613800138000"


def deliveries(project: Project, mailbox_id: str) -> list[tuple[str, str, str, str]]:
    """Each SMS of the mailbox: its delivery state, code, detail and when it was recorded."""
    ledger = project.ledger()
    try:
        rows = ledger.mailbox_history(mailbox_id)
    finally:
        ledger.close()
    return [
        (r["delivery"], r["delivery_code"], r["delivery_detail"], r["delivery_at"])
        for r in rows
        if r["channel"] == "sms"
    ]


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


def test_signed_callbacks_move_each_sms_forward_and_nothing_else_changes_it(
    tmp_path: Path, served: list[Served], ledger: str
) -> None:
    with TwilioPeer() as twilio:
        port, receiving = free_ports(2)
        project = Project(
            tmp_path,
            sms=twilio_settings(twilio.url),
            ledger=ledger,
            snapshot="snapshots/mailboxes-{date}.csv",
            extra=f"serve: {{listen: '127.0.0.1:{port}'}}\n"
            f"receipts: {{listen: '127.0.0.1:{receiving}'}}\n",
        )
        project.snapshot(
            csv_row("mb-1", DAY + timedelta(days=30), phone=OK),
            csv_row("mb-2", DAY + timedelta(days=30), phone=OTHER),
            day=DAY,
        )
        env = {"RENEWD_TEST_TWILIO_TOKEN": TOKEN}
        daemon = Served(project, "2026-12-01T10:00:00+08:00", env)
        served.append(daemon)
        daemon.expect(f"Twilio status callbacks on http://127.0.0.1:{receiving}/twilio/status")
        daemon.expect("run 1 for 2026-12-01 done")
        listener = f"127.0.0.1:{receiving}"
        (first,), (second,) = twilio.sids(OK), twilio.sids(OTHER)

        assert twilio.post_status(first, "sent", listener) == 200
        assert twilio.post_status(first, "delivered", listener) == 200
        delivered = deliveries(project, "mb-1")
        assert [d[:2] for d in delivered] == [("delivered", "")]
        # a replay (a signature carries no nonce), then statuses that come too late
        assert twilio.post_status(first, "delivered", listener) == 200
        assert twilio.post_status(first, "sent", listener) == 200
        assert twilio.post_status(first, "queued", listener) == 200
        assert deliveries(project, "mb-1") == delivered  # not even its time moved

        assert twilio.post_status(second, "undelivered", listener, error_code="30003") == 200
        assert twilio.post_status(second, "delivered", listener) == 200  # the first final stays
        assert [d[:3] for d in deliveries(project, "mb-2")] == [
            ("undelivered", "30003", "unreachable destination handset")
        ]

        # forged, missing, and signed for the address behind the proxy instead of the URL
        assert twilio.post_status(first, "undelivered", listener, token="guessed") == 403
        assert twilio.post_status(first, "undelivered", listener, signature="") == 403
        proxied = f"http://{listener}/twilio/status"
        assert twilio.post_status(first, "undelivered", listener, signed_url=proxied) == 403
        assert deliveries(project, "mb-1") == delivered
        warned = daemon.expect("refused for a bad or missing signature")
        assert f"check that {URL} is the URL Twilio posts to" in warned  # once, not per request

        unknown = "SM" + "f" * 32
        twilio.created[unknown] = {"To": OK, "StatusCallback": URL}
        assert twilio.post_status(unknown, "delivered", listener) == 200

        history = project.cli("history", "mb-2").stdout
        assert re.search(r"notify:sms\s+done\s+1\s+undelivered 30003\s+SM\w+: unreachable", history)
        checked = project.cli("check", env=env)  # beside the running daemon, which holds both
        assert checked.returncode == 0, checked.stderr
        _, metrics = get(port, "/metrics")
        assert daemon.stop() == 0
    counted = {
        'renewd_deliveries_total{channel="sms",status="sent"}': 1,
        'renewd_deliveries_total{channel="sms",status="delivered"}': 1,
        'renewd_deliveries_total{channel="sms",status="undelivered"}': 1,
        'renewd_twilio_callbacks_total{outcome="recorded"}': 3,
        'renewd_twilio_callbacks_total{outcome="unchanged"}': 4,
        'renewd_twilio_callbacks_total{outcome="forbidden"}': 3,
        'renewd_twilio_callbacks_total{outcome="unknown"}': 1,
    }
    assert {name: metric(metrics, name) for name in counted} == counted
    assert "renewd_undelivered_final_warnings_total{" not in metrics  # a reminder is not final


# -- the listener alone ------------------------------------------------------------------------

SID = "SM" + "0123456789abcdef" * 2


class Recorder:
    """What the listener hands on: the receipts, each request's outcome (and, if set, a failure)."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.counts: Counter[str] = Counter()
        self.failure: Exception | None = None
        self.lock = threading.Lock()

    def apply(self, receipts: list[Receipt]) -> None:
        if self.failure is not None:
            raise self.failure
        with self.lock:
            self.receipts += receipts

    def count(self, outcome: str) -> None:
        with self.lock:
            self.counts[outcome] += 1


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def listening(recorder: Recorder, **kwargs: Any) -> Callbacks:
    callbacks = Callbacks(
        "127.0.0.1:0",
        URL,
        Secret(TOKEN, "test"),
        ACCOUNT,
        recorder.apply,
        recorder.count,
        **kwargs,
    )
    callbacks.start()
    return callbacks


@pytest.fixture
def callbacks(recorder: Recorder) -> Iterator[Callbacks]:
    started = listening(recorder, request_timeout=2.0)
    yield started
    started.stop()


def fields(status: str = "delivered") -> dict[str, str]:
    return {"AccountSid": ACCOUNT, "MessageSid": SID, "MessageStatus": status}


def test_fifty_signed_callbacks_at_once_are_all_recorded(
    callbacks: Callbacks, recorder: Recorder
) -> None:
    statuses = [("sent", "delivered", "undelivered")[n % 3] for n in range(50)]
    answers: list[int] = []

    def post(status: str) -> None:
        form = fields(status)
        answers.append(post_form(callbacks.address, "/twilio/status", form, sign(TOKEN, URL, form)))

    threads = [threading.Thread(target=post, args=(status,)) for status in statuses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [200] * 50
    assert sorted(r.status for r in recorder.receipts) == sorted(statuses)


def request(body: bytes, head: str = "") -> bytes:
    return (
        "POST /twilio/status HTTP/1.1\r\nHost: renewd.example.com\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n{head}\r\n"
    ).encode() + body


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (request(b"", "Content-Length: 10000000\r\n"), 413),  # refused before it is read
        (request(b"a=1"), 411),
        (request(b"a=1", "Transfer-Encoding: chunked\r\n"), 411),
        (request(b"a=1", "Content-Length: 3\r\nContent-Length: 3\r\n"), 411),
        (request(b"a=1&a=2", "Content-Length: 7\r\n"), 400),  # a field named twice
        (request(b"\xff\xfe=1", "Content-Length: 4\r\n"), 400),
        (request(b"MessageSid=SM1", "Content-Length: 14\r\n"), 403),  # no signature
        (b"GET /twilio/status HTTP/1.1\r\n\r\n", 405),
        (b"GET /metrics HTTP/1.1\r\n\r\n", 405),
        (b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404),
        (b"\x00\xff garbage\r\n\r\n", 405),
    ],
)
def test_requests_that_are_no_signed_callback_are_refused_and_nothing_recorded(
    callbacks: Callbacks, recorder: Recorder, data: bytes, status: int
) -> None:
    assert exchange(callbacks.address, data).startswith(f"HTTP/1.1 {status} ".encode())
    assert recorder.receipts == []


def test_the_request_rate_is_bounded(recorder: Recorder) -> None:
    callbacks = listening(recorder, rate=1.0)  # bursts of 2
    try:
        form = fields()
        signature = sign(TOKEN, URL, form)
        answers = [
            post_form(callbacks.address, "/twilio/status", form, signature) for _ in range(5)
        ]
    finally:
        callbacks.stop()
    assert answers[:2] == [200, 200] and 429 in answers[2:]
    assert recorder.counts["throttled"] == answers.count(429)


def test_a_body_that_never_comes_times_out_and_records_nothing(
    callbacks: Callbacks, recorder: Recorder
) -> None:
    host, port = callbacks.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as client:
        client.sendall(request(b"AccountSid=", "Content-Length: 500\r\n"))
        assert client.recv(1) == b""  # closed by the listener once its time is up
    until(lambda: callbacks.open == 0, "the client let go")
    assert recorder.receipts == []


def test_a_ledger_that_cannot_record_gets_503_and_the_listener_goes_on(
    callbacks: Callbacks, recorder: Recorder
) -> None:
    form = fields()
    recorder.failure = RuntimeError("the ledger is down")
    assert post_form(callbacks.address, "/twilio/status", form, sign(TOKEN, URL, form)) == 503
    recorder.failure = None
    assert post_form(callbacks.address, "/twilio/status", form, sign(TOKEN, URL, form)) == 200
    assert recorder.counts["failed"] == 1 and len(recorder.receipts) == 1


def test_a_stopped_listener_leaves_no_task_behind(recorder: Recorder) -> None:
    callbacks = listening(recorder)
    form = fields()
    assert post_form(callbacks.address, "/twilio/status", form, sign(TOKEN, URL, form)) == 200
    loop = callbacks.loop
    callbacks.stop()
    assert loop.is_closed() and not asyncio.all_tasks(loop)
