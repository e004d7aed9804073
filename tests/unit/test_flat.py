"""The flat email writer gives, byte for byte, what aiosmtplib's send_message would send."""

from __future__ import annotations

import itertools
import random
import re
from email.header import Header
from email.policy import compat32

import pytest
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message

from renewd.delivery.senders.base import Outbound, email_message
from renewd.delivery.senders.flat import UTF8, Flat, Flattener, subject_line

SENDERS = [
    ("Renewals <renewals@mail.example.com>", ""),
    ("renewals@example.com", "Support <help@example.com>"),
    ("续费提醒 <renewals@example.cn>", "帮助 <help@example.cn>"),
    ("A display name long enough to need folding, and then some <renewals@example.com>", ""),
]
SUBJECTS = [
    "Your mailbox mb-000001 expires in 30 days",
    "您的邮箱 mb-000001 将在 30 天后到期",
    "x" * 71,
    "x" * 72,
    "word " * 30,
    "  spaces  around  ",
    "tab\tinside",
    "=?utf-8?q?looks_encoded?=",
    "",
    "Ünïcode " * 20,
    'semi; colon, comma: quote" yes',
]
BODIES = ["", "plain\n", "crlf\r\nline\n", "中文正文\n" * 40, "y" * 1000, "a\n.\nb\n"]
TO = ["mb-000001@example.cn", "a.b+c_d@x-y.example.com"]


def expected(flat: Flat, message: Outbound, sender: str, reply_to: str) -> bytes:
    """The generator's bytes for the same message, with the flat one's date, id and boundary."""
    email = email_message(message, sender, reply_to)
    written = flat.data.decode("ascii")
    date = re.search(r"^Date: (.*)$", written, re.MULTILINE)
    assert date is not None
    email.replace_header("Date", date.group(1))
    email.replace_header("Message-ID", flat.message_id)
    if message.html:
        boundary = re.search(r'boundary="([^"]+)"', written)
        assert boundary is not None
        email.set_boundary(boundary.group(1))
    assert extract_sender(email) == flat.sender
    assert extract_recipients(email) == [flat.recipient]
    return flatten_message(email)


@pytest.mark.parametrize(("sender", "reply_to"), SENDERS)
def test_the_bytes_are_the_generators(sender: str, reply_to: str) -> None:
    flattener = Flattener(sender, reply_to)
    for subject, text, html, to in itertools.product(SUBJECTS, BODIES, BODIES, TO):
        message = Outbound("renewd-42", "email", to, "en", subject, text, html)
        flat = flattener.flat(message)
        assert flat is not None
        assert flat.data == expected(flat, message, sender, reply_to), (subject, text, html)


@pytest.mark.parametrize(
    "to", ["Someone <a@example.com>", "ü@example.com", "a..b@example.com", "a@b@example.com"]
)
def test_other_addresses_take_the_general_path(to: str) -> None:
    message = Outbound("k", "email", to, "en", "Hi", "x")
    assert Flattener("renewals@example.com").flat(message) is None


def test_a_sender_not_in_ascii_takes_the_general_path() -> None:
    message = Outbound("k", "email", "a@example.com", "en", "Hi", "x")
    assert Flattener("renewals@例子.cn").flat(message) is None


def test_every_email_says_it_was_sent_automatically() -> None:
    """RFC 3834: auto-responders must not answer it (and Exchange's own header, the same)."""
    message = Outbound("k", "email", "a@example.com", "en", "Hi", "x", "<p>x</p>")
    flat = Flattener("renewals@example.com").flat(message)
    assert flat is not None
    head = flat.data.split(b"\n\n", 1)[0].decode("ascii").splitlines()
    assert "Auto-Submitted: auto-generated" in head
    assert "X-Auto-Response-Suppress: OOF, AutoReply" in head
    general = email_message(message, "Renewals <renewals@example.com>")
    assert general["Auto-Submitted"] == "auto-generated"


def test_header_injection_is_refused() -> None:
    message = Outbound("k", "email", "a@example.com", "en", subject="Hi\r\nBcc: v@x.com", text="x")
    with pytest.raises(ValueError, match="CR or LF"):
        Flattener("renewals@example.com").flat(message)


def test_subjects_split_into_the_words_the_email_package_writes() -> None:
    """`Utf8` ends each encoded word where `Charset("utf-8")` does, for subjects of every width
    of character and length (ASCII, 2-, 3- and 4-byte characters, spaces where folding may
    break), under header names of several lengths (the first line's room differs)."""
    rng = random.Random(14)
    alphabet = "ab c-1" + "éß" + "邮箱续费到期" + "😀" + "，。"
    subjects = [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 160))) for _ in range(3000)
    ]
    subjects += ["邮箱 mb-00001074 将在 1 天后被删除，请尽快续费", "😀" * 40, "é" * 200, "x" * 90]
    for subject in subjects:
        for name in ("Subject", "X", "A-Header-Name-Long-Enough-To-Crowd-The-First-Line"):
            ours = Header(subject, UTF8, header_name=name)
            theirs = Header(subject, "utf-8", header_name=name)
            assert compat32.fold(name, ours) == compat32.fold(name, theirs), (name, subject)  # type: ignore[arg-type]
        written = Header(subject, "utf-8", header_name="Subject")
        if not subject.isascii():  # the email package's own path, as email_message sets it
            assert subject_line(subject) == compat32.fold("Subject", written)  # type: ignore[arg-type]
