"""Test helpers: paths, the reference day, and a mailbox factory with sensible defaults."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from renewd.core.model import Mailbox
from renewd.state.ledger import Ledger
from renewd.state.schema import orders

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 12, 1)

BASE = Mailbox(
    mailbox_id="mb-1",
    account_id="acct-1",
    edition="standard",
    expires_on=TODAY + timedelta(days=100),
    auto_renew=False,
    balance=Decimal("0.00"),
    renewal_fee=Decimal("120.00"),
    currency="CNY",
    renewal_months=12,
    email="user@example.com",
    phone="+8613800138000",
    locale="zh-CN",
    domain="",
    domain_via_provider=False,
    domain_expires_on=None,
)


def exchange(address: str, data: bytes) -> bytes:
    """Send raw bytes to a `host:port` listener and read its whole answer (for malformed requests)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as client:
        client.sendall(data)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer


def until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll an observable condition until it holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def mailbox(days_to_expiry: int | None = None, **changes: Any) -> Mailbox:
    """A paid mailbox; `days_to_expiry` is counted from TODAY."""
    if days_to_expiry is not None:
        changes["expires_on"] = TODAY + timedelta(days=days_to_expiry)
    for key in ("balance", "renewal_fee"):
        if key in changes:
            changes[key] = Decimal(changes[key])
    return replace(BASE, **changes)


CSV_HEADER = "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,email,phone,locale\n"


def csv_row(
    mailbox_id: str,
    expires_on: date,
    *,
    account_id: str = "",
    edition: str = "standard",
    auto_renew: bool = False,
    balance: str = "0.00",
    fee: str = "120.00",
    phone: str = "+8613800138000",
    locale: str = "zh-CN",
) -> str:
    account = account_id or f"acct-{mailbox_id}"
    return (
        f"{mailbox_id},{account},{edition},{expires_on.isoformat()},{str(auto_renew).lower()},{balance},{fee},CNY,"
        f"{mailbox_id}@example.cn,{phone},{locale}"
    )


class Project:
    """A config, ledger, snapshot and outbox in a temporary directory, driven like an operator would."""

    def __init__(
        self,
        root: Path,
        billing: str = "{backend: ledger}",
        extra: str = "",
        email: str = "{backend: file, path: out/mail, from: renewals@mail.example.com}",
        sms: str = "{backend: file, path: out/sms.jsonl, window: 00:00-24:00}",
        snapshot: str = "snapshot.csv",
        rules: Path = ROOT / "rules",
        ledger: str = "",
    ) -> None:
        self.root = root
        self.snapshot_name = snapshot
        self.ledger_url = ledger or f"sqlite:///{root / 'state' / 'ledger.sqlite3'}"
        (root / "config.yaml").write_text(
            f"rules: {rules}\n"
            f"snapshot: {snapshot}\n"
            f"ledger: {ledger or 'state/ledger.sqlite3'}\n"
            f"billing: {billing}\n"
            f"senders:\n  email: {email}\n  sms: {sms}\n" + extra,
            encoding="utf-8",
        )

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    def snapshot(self, *rows: str, day: date | None = None) -> Path:
        name = self.snapshot_name.replace("{date}", day.isoformat()) if day else self.snapshot_name
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CSV_HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")
        return path

    def export_again(self, day: date | None = None) -> Path:
        """The next day's export of the same data: one more mailbox (a new signup, far from any
        step), so the file differs as real daily exports do. The deletion guard counts only
        sightings in an earlier, different snapshot."""
        name = self.snapshot_name.replace("{date}", day.isoformat()) if day else self.snapshot_name
        path = self.root / name
        self.exports = getattr(self, "exports", 0) + 1
        with path.open("a", encoding="utf-8") as out:
            out.write(
                csv_row(f"signup-{self.exports}", TODAY + timedelta(days=200), edition="free")
                + "\n"
            )
        return path

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The installed command in its own process, so a test can kill it or hold its lock."""
        command = [str(Path(sys.executable).parent / "renewd"), *args, "--config", str(self.config)]
        return subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
        )

    def run(
        self, day: date, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.cli("run", "--date", day.isoformat(), *args, env=env)

    def emails(self) -> list[EmailMessage]:
        folder = self.root / "out" / "mail"
        if not folder.exists():
            return []
        parser = BytesParser(policy=default_policy)
        return [parser.parsebytes(p.read_bytes()) for p in sorted((folder / "new").iterdir())]

    def sms(self) -> list[dict[str, Any]]:
        path = self.root / "out" / "sms.jsonl"
        return (
            [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            if path.exists()
            else []
        )

    def ledger(self) -> Ledger:
        return Ledger(self.ledger_url)

    def scalar(self, sql: str, **params: Any) -> Any:
        """One value from the ledger, read in a transaction of its own: PostgreSQL's statistics
        views keep one picture per transaction, so a poll needs a new one each time."""
        ledger = self.ledger()
        try:
            with ledger.engine.connect() as conn:
                return conn.execute(text(sql), params).scalar_one()
        finally:
            ledger.close()

    def orders(self) -> list[dict[str, Any]]:
        ledger = self.ledger()
        try:
            with ledger.engine.connect() as conn:
                return [dict(row) for row in conn.execute(select(orders)).mappings()]
        finally:
            ledger.close()


# --- `renewd serve` as a process --------------------------------------------------------------


class Served:
    """A `renewd serve` process whose log lines the test reads as they come."""

    def __init__(self, project: Project, now: str, env: dict[str, str] | None = None) -> None:
        command = [
            str(Path(sys.executable).parent / "renewd"),
            "serve",
            "--config",
            str(project.config),
        ]
        full_env = {**os.environ, "RENEWD_FAKE_NOW": now, **(env or {})}
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=full_env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))

    def expect(self, text: str, timeout: float = 30) -> str:
        """The next log line containing `text` (earlier lines are kept in `seen`)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no log line with {text!r}; saw:\n" + "\n".join(self.seen)
                ) from None
            self.seen.append(line)
            if text in line:
                return line

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# --- the run lock on PostgreSQL ----------------------------------------------------------------


def lock_session(project: Project) -> int:
    """The PostgreSQL backend that holds renewd's advisory lock on the project's ledger."""
    return int(
        project.scalar(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    )


def end_session(project: Project, pid: int) -> None:
    """What a DBA's pg_terminate_backend, idle_session_timeout or a dropped connection do; back
    once the session is gone and its locks with it."""
    assert project.scalar("SELECT pg_terminate_backend(:pid)", pid=pid)
    gone = (
        "SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE pid = :pid) "
        "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :pid)"
    )
    until(lambda: bool(project.scalar(gone, pid=pid)), f"session {pid} gone")


def queue_for_lock(project: Project, holder: int) -> Callable[[], None]:
    """Another renewd waiting for the lock `holder` has: it gets it the instant it is released,
    before the holder could take it back. Returns what lets go of it."""
    key = project.scalar(
        "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
        "WHERE locktype = 'advisory' AND pid = :pid",
        pid=holder,
    )
    other = project.ledger()
    conn = other.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    waiter = threading.Thread(
        target=conn.execute, args=(text("SELECT pg_advisory_lock(:key)"), {"key": key})
    )
    waiter.start()
    waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    until(lambda: bool(project.scalar(waiting)), "the waiter queued for the lock")

    def let_go() -> None:
        waiter.join(timeout=30)
        conn.close()
        other.close()

    return let_go


def assert_stopped_midway(project: Project, delivered: int, total: int) -> None:
    """A run stopped before all `total` messages went out; each one it had not sent waits in the
    outbox for the next run."""
    assert delivered < total
    ledger = project.ledger()
    try:
        left = [a["state"] for a in ledger.open_actions("notify")]
    finally:
        ledger.close()
    assert left == ["pending"] * (total - delivered)
