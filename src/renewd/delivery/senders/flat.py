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
from collections.abc import Iterator
from dataclasses import dataclass
from email import base64mime, quoprimime
from email.charset import RFC2047_CHROME_LEN, Charset
from email.header import Header
from email.policy import compat32
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from renewd.delivery.senders.base import AUTOMATIC, Outbound, _address, _domain

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


AUTOMATIC_LINES = "".join(header(name, value) for name, value in AUTOMATIC)

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
            AUTOMATIC_LINES,
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
    if subject.isascii():
        return header("Subject", subject)
    words = UTF8.header_encode_lines(subject, _room("Subject"))
    if subject.isprintable() and all(words):  # one line of text, each word whole: joined
        return "Subject: " + "\n ".join(str(word) for word in words) + "\n"
    return header("Subject", encoded(subject))  # what the words alone do not say: the folding


def _room(name: str) -> Iterator[int]:
    """The room compat32's folding gives each line of a header's encoded words."""
    yield MAX_LINE - len(name) - 2
    while True:
        yield MAX_LINE - 1


def encoded(subject: str) -> Header:
    """A subject that is not ASCII, as `email_message` sets it, split into encoded words by
    `Utf8` (the same words, found in one pass)."""
    return Header(subject, UTF8, header_name="Subject")


class Utf8(Charset):
    """UTF-8 in encoded words, as `Charset("utf-8")` writes them.

    Its `header_encode_lines` finds where each word must end by encoding the line so far again
    for every character it adds (quadratic: most of the CPU of a subject with a mailbox id in
    it, and unique subjects cannot be cached). A word's length follows from its characters'
    bytes (base64: 4 characters per 3 bytes, begun; quoted-printable: 1 or 3 per byte), so this
    one counts as it goes and ends each word where the email package would, in the encoding it
    would choose for the whole subject. Tests compare the two.
    """

    def __init__(self) -> None:
        super().__init__("utf-8")

    def header_encode_lines(self, string: str, maxlengths: Iterator[int]) -> list[str | None]:
        data = string.encode("utf-8")  # raises for a lone surrogate, as the email package does
        base64 = -(-len(data) // 3) * 4 < len(data) + 2 * len(data.translate(None, _QP_PLAIN))
        encoder = base64mime if base64 else quoprimime  # the shorter; quoted-printable on a tie
        extra = len("utf-8") + RFC2047_CHROME_LEN
        lines: list[str | None] = []
        start, size = 0, 0  # the current word's first character; its bytes, or its length
        maxlen = next(maxlengths) - extra
        for index, character in enumerate(string):
            code = ord(character)
            if base64:
                width = 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
            else:
                width = quoprimime.header_length(character.encode("utf-8"))
            length = -(-(size + width) // 3) * 4 if base64 else size + width
            if length > maxlen:
                if not lines and index == start:  # nothing fits on the first line
                    lines.append(None)
                else:
                    lines.append(
                        encoder.header_encode(string[start:index].encode("utf-8"), "utf-8")
                    )
                start, size = index, 0
                maxlen = next(maxlengths) - extra
            size += width
        lines.append(_word(encoder, string[start:]))
        return lines


# Bytes quoted-printable writes as themselves in a header (the rest take 3 characters).
_QP_PLAIN = bytes(b for b in range(256) if quoprimime.header_length(bytes([b])) == 1)


def _word(encoder: Any, text: str) -> str:
    """One encoded word, by `base64mime` or `quoprimime`."""
    return str(encoder.header_encode(text.encode("utf-8"), "utf-8"))


UTF8 = Utf8()


def _base64(text: str) -> str:
    """A body as MIMEText(text, subtype, "utf-8") carries it: base64 in lines of 76."""
    return base64.encodebytes(text.encode("utf-8")).decode("ascii")
