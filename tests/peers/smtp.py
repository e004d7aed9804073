"""A real SMTP server on loopback (aiosmtpd) with STARTTLS, AUTH and failures chosen by recipient.

The local part of a recipient picks the server's behaviour: `rcpt450`/`rcpt550` at RCPT,
`data451`/`data554` at DATA, `drop` closes the connection, `slow` answers late. A behaviour
prefixed `once-` happens only on the first attempt for that recipient.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections import Counter
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "renewd", "s3cret-pass"


class Handler:
    def __init__(self, slow_seconds: float) -> None:
        self.slow_seconds = slow_seconds
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.seen: Counter[str] = Counter()
        self.logins: list[str] = []
        self.arrived = threading.Event()
        self.counted = threading.Condition()

    def _behaviour(self, address: str, stage: str) -> str:
        local = address.split("@")[0]
        key = f"{stage}:{address}"
        self.seen[key] += 1
        if local.startswith("once-"):
            return local[5:] if self.seen[key] == 1 else ""
        return local

    def wait_for(self, count: int, timeout: float) -> bool:
        """True once `count` messages have arrived; False after `timeout` seconds without."""
        with self.counted:
            return self.counted.wait_for(lambda: len(self.messages) >= count, timeout)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        behaviour = self._behaviour(address, "rcpt")
        if behaviour == "rcpt450":
            return "450 4.2.1 Mailbox busy, try later"
        if behaviour == "rcpt550":
            return "550 5.1.1 No such user here"
        if behaviour == "drop":
            server.transport.close()
            return "421 4.4.2 closing"
        if behaviour == "slow":
            await asyncio.sleep(self.slow_seconds)
        if behaviour.startswith("delay"):
            await asyncio.sleep(0.3)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        behaviour = self._behaviour(envelope.rcpt_tos[0], "data")
        if behaviour == "data451":
            return "451 4.3.0 Temporary failure, try later"
        if behaviour == "data554":
            return "554 5.7.1 Message rejected as spam"
        with self.counted:
            self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
            self.counted.notify_all()
        self.arrived.set()
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Message accepted for delivery"


class SmtpPeer:
    def __init__(self, directory: Path, slow_seconds: float = 3.0) -> None:
        self.ca = trustme.CA()
        self.ca_file = directory / "smtp-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.handler = Handler(slow_seconds)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="mx.test",
            ready_timeout=10,
            tls_context=server_tls,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=True,
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.handler.logins.append(data.login.decode())
            if data.login == USER.encode() and data.password == PASSWORD.encode():
                return AuthResult(success=True, auth_data=data.login)
        return AuthResult(success=False, handled=False)

    def __enter__(self) -> SmtpPeer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def settings(self, **extra: Any) -> str:
        """The senders.email block for a renewd config pointing here."""
        values = {
            "backend": "smtp",
            "host": "127.0.0.1",
            "port": self.port,
            "security": "starttls",
            "username": USER,
            "password_env": "RENEWD_TEST_SMTP_PASSWORD",
            "from": "Renewals <renewals@mail.example.com>",
            "ca_file": str(self.ca_file),
            "timeout": 1,
            "attempts": 2,
            "backoff": 0,
            "connections": 2,
            "local_hostname": "renewd.test",
            **extra,
        }
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in values.items()) + "}"


def _yaml(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)
