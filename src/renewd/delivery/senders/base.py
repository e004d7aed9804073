"""The one small contract every sender keeps, and the email message they share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from enum import StrEnum
from typing import Any, Protocol

from renewd.config.plugins import SettingsError


@dataclass(frozen=True)
class Outbound:
    """A rendered message for one recipient. `key` is unique per decided step and channel."""

    key: str
    channel: str
    to: str
    locale: str
    subject: str = ""
    text: str = ""
    html: str = ""


class Status(StrEnum):
    SENT = "sent"  # accepted by the provider: recorded as done
    RETRY = "retry"  # transient: stays in the outbox for the next attempt
    FAILED = "failed"  # permanent for this message: recorded, never retried
    STOP = "stop"  # the channel itself is broken (credentials, TLS): stop it for this run


@dataclass(frozen=True)
class Result:
    status: Status
    provider_id: str = ""
    error: str = ""


@dataclass(frozen=True)
class SendWindow:
    """Local hours in which a channel may send (quiet hours outside); may wrap past midnight."""

    start: time
    end: time | None  # None: until midnight ("24:00")

    def open_at(self, moment: datetime) -> bool:
        now = moment.time()
        if self.end is None:
            return now >= self.start
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    @classmethod
    def parse(cls, text: str) -> SendWindow:
        """ "09:00-21:00"; "00:00-24:00" is all day."""
        try:
            first, last = (part.strip() for part in text.split("-"))
            start = time.fromisoformat(first)
            end = None if last == "24:00" else time.fromisoformat(last)
        except ValueError:
            raise ValueError("window must look like 09:00-21:00") from None
        return cls(start, end)


class Sender(Protocol):
    async def send(self, message: Outbound) -> Result: ...

    async def close(self) -> None: ...


DEFAULT_WINDOWS = {"sms": "09:00-21:00"}


def send_window(settings: dict[str, Any], channel: str) -> SendWindow | None:
    """The channel's sending hours: SMS by default only 09:00-21:00 local time; email any time."""
    text = settings.get("window", DEFAULT_WINDOWS.get(channel))
    if text is None:
        return None
    try:
        return SendWindow.parse(str(text))
    except ValueError as exc:
        raise SettingsError(f"senders.{channel}: {exc}") from None


# Every email says it was sent by a machine (RFC 3834), so that auto-responders (vacation
# replies, out-of-office notices) do not answer it; Exchange reads its own header instead.
AUTOMATIC = (("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "OOF, AutoReply"))


def email_message(message: Outbound, sender: str, reply_to: str = "") -> Message:
    """multipart/alternative with Message-ID, Date and `AUTOMATIC`; header values with CR or LF
    are refused.

    Built with the compat32 MIME classes: the same bytes on the wire as EmailMessage, for a
    small part of the CPU (EmailMessage parses every header it is given): bulk sending needs it.
    """
    for value in (message.to, message.subject, sender, reply_to):
        if "\r" in value or "\n" in value:
            raise ValueError("a header value contains CR or LF")
    body = MIMEText(message.text, "plain", "utf-8")
    email: Message = body
    if message.html:
        email = MIMEMultipart(
            "alternative", _subparts=[body, MIMEText(message.html, "html", "utf-8")]
        )
    email["From"] = _address(sender)
    email["To"] = _address(message.to)
    if reply_to:
        email["Reply-To"] = _address(reply_to)
    subject = message.subject
    if subject.isascii():
        email["Subject"] = subject
    else:  # compat32 takes a Header object and folds its encoded words correctly
        email["Subject"] = Header(subject, "utf-8", header_name="Subject")  # type: ignore[assignment]
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = make_msgid(idstring=message.key.replace("/", "."), domain=_domain(sender))
    for name, value in AUTOMATIC:
        email[name] = value
    return email


def _address(value: str) -> str:
    """An address with its display name encoded when it is not ASCII."""
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8") if address else value


def _domain(address: str) -> str:
    try:
        return Address(addr_spec=address.split("<")[-1].rstrip(">").strip()).domain or "localhost"
    except (ValueError, IndexError):
        return "localhost"


def masked(address: str) -> str:
    """a***@example.com, +86******8000: enough to recognise, not enough to leak."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return address[:3] + "*" * max(len(address) - 7, 0) + address[-4:]


def setting(settings: dict[str, Any], key: str, what: str, default: str | None = None) -> str:
    value = settings.get(key, default)
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{what}: {key!r} must be a non-empty string")
    return value
