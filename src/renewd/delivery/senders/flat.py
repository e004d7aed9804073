"""An email as the bytes SMTP carries, written directly: what flattening `email_message` gives.

aiosmtplib's `send_message` flattens the message object with the `email` package's generator,
which refolds every header through `email.header.Header`: with building the MIME objects, that
was most of renewd's CPU per email. Our messages have one shape (`email_message`: a text part,
an optional HTML part, both UTF-8 in base64, a handful of headers), so `Flattener` writes that
shape itself. Headers that are short and plain ASCII are written as they stand (what the folding
gives for them); any other header goes through the very folding the generator uses. A message
that is not of this shape (an address that is not a plain one) gets None, and the sender takes
the general path. Tests compare the bytes with the generator's for a table of messages.
"""

from __future__ import annotations

import base64
import functools
import random
import re
import sys
from dataclasses import dataclass
from email.header import Header
from email.policy import compat32
from email.utils import formatdate, make_msgid, parseaddr

from renewd.delivery.senders.base import Outbound, _address, _domain

PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)
PLAIN_VALUE = re.compile(r"[!-~]+(?: [!-~]+)*")  # printable ASCII, single spaces inside only
MAX_LINE = 78  # compat32's max_line_length
BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))  # as email.generator makes its boundaries
PART = (
    'Content-Type: text/{}; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n'
)


def header(name: str, value: str | Header) -> str:
    """One header line as compat32 folds it (the generator's own folding unless plain)."""
    if (
        isinstance(value, str)
        and len(name) + 2 + len(value) <= MAX_LINE
        and PLAIN_VALUE.fullmatch(value)
    ):
        return f"{name}: {value}\n"
    return compat32.fold(name, value)  # type: ignore[arg-type]  # compat32 takes a Header too


# Every boundary has the same length and alphabet, so every one folds as this sample does.
SAMPLE_BOUNDARY = "=" * 15 + "0" * BOUNDARY_DIGITS + "=="
MULTIPART = (
    header("Content-Type", f'multipart/alternative; boundary="{SAMPLE_BOUNDARY}"')
    + "MIME-Version: 1.0\n"
)


@dataclass(frozen=True)
class Flat:
    """The envelope and the message bytes that `send_message` would send for the same message."""

    sender: str
    recipient: str
    data: bytes
    message_id: str


class Flattener:
    """Flat emails from one sender: its address headers are worked out once."""

    def __init__(self, sender: str, reply_to: str = "") -> None:
        self.envelope = parseaddr(sender)[1]  # what aiosmtplib reads back from the From header
        clean = not any("\r" in v or "\n" in v for v in (sender, reply_to))
        self.usable = clean and bool(self.envelope) and self.envelope.isascii()
        if self.usable:
            self.from_line = header("From", _address(sender))
            self.reply_line = header("Reply-To", _address(reply_to)) if reply_to else ""
            self.domain = _domain(sender)

    def flat(self, message: Outbound) -> Flat | None:
        """The message as bytes, or None when it is not of the shape written here.

        Raises ValueError for a header value with CR or LF, as `email_message` does.
        """
        if "\r" in message.subject or "\n" in message.subject:
            raise ValueError("a header value contains CR or LF")
        if not self.usable or not PLAIN_ADDRESS.fullmatch(message.to):
            return None
        text = _base64(message.text)
        boundary = ""
        if message.html:
            token = random.randrange(sys.maxsize)  # noqa: S311 - a MIME boundary, as email's own
            boundary = f"{'=' * 15}{token:0{BOUNDARY_DIGITS}d}=="
            head = MULTIPART.replace(SAMPLE_BOUNDARY, boundary)
        else:
            head = PART.format("plain")
        subject = message.subject
        message_id = make_msgid(idstring=message.key.replace("/", "."), domain=self.domain)
        lines = [
            head,
            self.from_line,
            header("To", message.to),  # what _address gives for a plain address
            self.reply_line,
            subject_line(subject),
            header("Date", formatdate(localtime=False, usegmt=True)),
            header("Message-ID", message_id),
            "\n",
        ]
        if boundary:
            html = _base64(message.html)
            lines += [f"--{boundary}\n", PART.format("plain"), "\n", text]
            lines += [f"\n--{boundary}\n", PART.format("html"), "\n", html, f"\n--{boundary}--\n"]
        else:
            lines.append(text)
        data = "".join(lines).encode("ascii")
        return Flat(self.envelope, message.to, data, message_id)


@functools.lru_cache(maxsize=4096)
def subject_line(subject: str) -> str:
    """The Subject header, folded once per distinct subject: a day's messages of one rule and
    step mostly share theirs, and folding an encoded word is most of an email's CPU."""
    return header("Subject", subject if subject.isascii() else encoded(subject))


def encoded(subject: str) -> Header:
    """A subject that is not ASCII, as `email_message` sets it."""
    return Header(subject, "utf-8", header_name="Subject")


def _base64(text: str) -> str:
    """A body as MIMEText(text, subtype, "utf-8") carries it: base64 in lines of 76."""
    return base64.encodebytes(text.encode("utf-8")).decode("ascii")
