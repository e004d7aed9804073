"""Email through aiosmtplib: a small pool of reused connections sharing one TLS context.

A prebuilt `ssl.SSLContext` is shared by every connection (building one per connection costs
tens of milliseconds and caps bulk throughput). 4xx replies, dropped connections and timeouts
are retried with backoff, then left in the outbox; 5xx replies fail the message for good;
bad credentials or TLS stop the channel for the run. Messages go out as the bytes `flat.py`
writes (what flattening the MIME objects would give, for a fraction of the CPU). With
`return_path`, each message's envelope sender (MAIL FROM) is its own (VERP), so that a bounce
names its message; the message itself carries no Return-Path (the delivering MTA adds one).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from email.errors import MessageError
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPException,
    SMTPHeloError,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from renewd.config.plugins import Secret, SettingsError, known_settings, number, secret
from renewd.delivery.receipts import ReturnPath
from renewd.delivery.senders.base import Outbound, Result, Status, email_message, setting
from renewd.delivery.senders.flat import Flat, Flattener

SETTINGS = (
    "host",
    "port",
    "security",
    "username",
    "password",
    "password_env",
    "password_file",
    "from",
    "reply_to",
    "timeout",
    "connections",
    "local_hostname",
    "ca_file",
    "attempts",
    "backoff",
    "max_retry_seconds",
    "return_path",
)
PORTS = {"starttls": 587, "tls": 465, "none": 25}
PASSWORDS = {"password", "password_env", "password_file"}


def _tls(ca_file: Any, base: Path, what: str) -> ssl.SSLContext:
    """One context for every connection; an extra CA file that cannot be used is a setting's
    error, said once."""
    cafile = str(base / ca_file) if isinstance(ca_file, str) else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or "not PEM"
        raise SettingsError(f"{what}: cannot use ca_file {cafile}: {reason}") from None


class SmtpSender:
    def __init__(self, settings: dict[str, Any], base: Path, channel: str) -> None:
        what = f"senders.{channel}"
        known_settings(settings, SETTINGS, what)
        if channel != "email":
            raise SettingsError(f"{what}: the smtp sender sends email only")
        self.host = setting(settings, "host", what)
        self.security = setting(settings, "security", what, "starttls")
        if self.security not in PORTS:
            raise SettingsError(f"{what}: security must be starttls, tls or none")
        self.port = int(number(settings, "port", what, PORTS[self.security], 1, 65535, True))
        self.sender = setting(settings, "from", what)
        self.reply_to = str(settings.get("reply_to", ""))
        self.username = str(settings.get("username", ""))
        self.password: Secret | None = None
        if self.username or PASSWORDS & settings.keys():
            self.password = secret(settings, "password", what, base)
            if not self.username:
                raise SettingsError(f"{what}: a password is set but no username: set username")
        self.timeout = number(settings, "timeout", what, 30, 0.1)
        self.concurrency = int(number(settings, "connections", what, 8, 1, 256, True))
        self.attempts = int(number(settings, "attempts", what, 3, 1, 100, True))
        self.backoff = number(settings, "backoff", what, 1.0)
        self.max_retry_seconds = number(settings, "max_retry_seconds", what, 60)
        self.local_hostname = str(settings.get("local_hostname") or socket.getfqdn())
        self.tls = _tls(settings.get("ca_file"), base, what) if self.security != "none" else None
        verp = settings.get("return_path")
        self.return_path = ReturnPath.parse(verp, what) if verp is not None else None
        self._idle: list[SMTP] = []
        self._flattener = Flattener(self.sender, self.reply_to)

    def _client(self) -> SMTP:
        return SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            tls_context=self.tls,
            local_hostname=self.local_hostname,
            username=self.username or None,
            password=self.password.reveal() if self.password else None,
            timeout=self.timeout,
        )

    async def send(self, message: Outbound) -> Result:
        try:
            email = self._flattener.flat(message) or email_message(
                message, self.sender, self.reply_to
            )
        except (ValueError, MessageError) as exc:  # a header that cannot be written as it is
            return Result(Status.FAILED, error=f"cannot write the message: {exc}")
        envelope = self.return_path.address(message.key) if self.return_path else None
        deadline = time.monotonic() + self.max_retry_seconds
        result = await self._once(email, envelope)
        for attempt in range(1, self.attempts):
            delay = self.backoff * 2 ** (attempt - 1)
            if result.status is not Status.RETRY or time.monotonic() + delay > deadline:
                break
            await asyncio.sleep(delay)
            result = await self._once(email, envelope)
        return result

    async def _once(self, email: Flat | Message, envelope: str | None) -> Result:
        """One attempt; `envelope` is the message's own return path (None: the From address)."""
        client = self._idle.pop() if self._idle else self._client()
        try:
            if not client.is_connected:
                await client.connect()
            if isinstance(email, Flat):
                refused, _ = await _send_flat(client, email, envelope or email.sender)
            else:
                refused, _ = await client.send_message(email, sender=envelope)
        except (MessageError, SMTPException, OSError) as exc:
            return self._failed(client, exc)
        self._keep(client)
        if refused:  # one recipient per message: any refusal is this message's
            code, text = next(iter(refused.values()))
            return _by_code(code, text)
        message_id = email.message_id if isinstance(email, Flat) else str(email["Message-ID"])
        return Result(Status.SENT, provider_id=message_id)

    def _failed(self, client: SMTP, exc: Exception) -> Result:
        """What an error means for this message, for the channel, and for the connection."""
        if isinstance(exc, MessageError):  # flattening, before any command: a header it refuses
            self._keep(client)
            return Result(Status.FAILED, error=f"cannot write the message: {exc}")
        if isinstance(exc, SMTPAuthenticationError):
            client.close()
            return Result(Status.STOP, error=f"authentication failed: {exc.code} {exc.message}")
        if isinstance(exc, ssl.SSLError):
            client.close()
            return Result(Status.STOP, error=f"TLS failed: {exc}")
        if isinstance(exc, SMTPRecipientsRefused):
            self._keep(client)
            refusal = exc.recipients[0]
            return _by_code(refusal.code, refusal.message)
        if isinstance(exc, SMTPResponseException):
            self._keep(client)
            return _by_code(exc.code, exc.message)
        client.close()
        if isinstance(exc, SMTPServerDisconnected | SMTPTimeoutError | SMTPConnectError | OSError):
            return Result(Status.RETRY, error=f"{type(exc).__name__}: {exc}")
        return Result(Status.STOP, error=str(exc))  # e.g. no STARTTLS offered: a setup problem

    def _keep(self, client: SMTP) -> None:
        if client.is_connected:
            self._idle.append(client)

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            try:
                await client.quit()
            except (SMTPException, OSError):
                client.close()


async def _send_flat(client: SMTP, email: Flat, sender: str) -> tuple[dict[str, Any], str]:
    """What `send_message` does for a message object, for one already flat and ASCII-addressed:
    the EHLO it would make sure of and the MAIL option it would add.
    """
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except SMTPHeloError:
            if not client.is_connected:
                raise
            await client.helo()
    options = ["BODY=8BITMIME"] if client.supports_extension("8BITMIME") else []
    return await client.sendmail(sender, [email.recipient], email.data, mail_options=options)


def _by_code(code: int, text: str) -> Result:
    error = f"{code} {text}"
    return Result(Status.RETRY if 400 <= code < 500 else Status.FAILED, error=error)
