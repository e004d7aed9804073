"""Bounces as real MTAs send them: delivery status notifications (RFC 3464) in the shapes of
Postfix, Exim and a Gmail-style report, built with the email package from the RFC's structure,
and delivered into a Maildir the way a delivery agent does (written in tmp/, renamed into new/).

Each MTA puts the envelope recipient (our per-message return path) somewhere else: Postfix in
Delivered-To and X-Original-To, Exim in Envelope-to, the Gmail-style report only in To.
"""

from __future__ import annotations

import itertools
import os
from email.message import Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from pathlib import Path

_names = itertools.count()


def _status_part(per_message: dict[str, str], recipients: list[dict[str, str]]) -> Message:
    """message/delivery-status: a block about the message, then one per recipient."""
    part = Message()
    part.set_type("message/delivery-status")
    blocks: list[Message | str] = []
    for fields in (per_message, *recipients):
        block = Message()
        for name, value in fields.items():
            block[name] = value
        blocks.append(block)
    part.set_payload(blocks)
    return part


def _original(to: str, sender: str) -> Message:
    original = MIMEText("Your mailbox expires soon.\n", "plain", "utf-8")
    original["From"] = "Renewals <renewals@mail.example.com>"
    original["To"] = to
    original["Subject"] = "Your mailbox expires soon"
    original["Message-ID"] = make_msgid(domain="mail.example.com")
    original["Return-Path"] = f"<{sender}>"
    return original


def postfix(
    verp: str,
    to: str,
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{to}>: Recipient address rejected: User unknown in virtual mailbox table",
    action: str = "failed",
) -> bytes:
    """Postfix's bounce (or, with action delayed, its delay warning): a notification, the
    report, and the returned message's headers."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["Return-Path"] = "<>"
    report["X-Original-To"] = verp
    report["Delivered-To"] = verp
    report["Date"] = formatdate()
    report["From"] = "MAILER-DAEMON@mx.example.net (Mail Delivery System)"
    report["Subject"] = (
        "Delayed Mail (still being retried)"
        if action == "delayed"
        else "Undelivered Mail Returned to Sender"
    )
    report["To"] = verp
    report["Auto-Submitted"] = "auto-replied"
    notice = MIMEText(
        "This is the mail system at host mx.example.net.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n"
    )
    notice["Content-Description"] = "Notification"
    report.attach(notice)
    status_part = _status_part(
        {
            "Reporting-MTA": "dns; mx.example.net",
            "X-Postfix-Queue-ID": "4Qb9Xk0nQwz9sWB",
            "X-Postfix-Sender": f"rfc822; {verp}",
            "Arrival-Date": formatdate(),
        },
        [
            {
                "Final-Recipient": f"rfc822; {to}",
                "Original-Recipient": f"rfc822;{to}",
                "Action": action,
                "Status": status,
                "Remote-MTA": "dns; mx.example.cn",
                "Diagnostic-Code": diagnostic.format(to=to),
                **({"Will-Retry-Until": formatdate()} if action == "delayed" else {}),
            }
        ],
    )
    status_part["Content-Description"] = "Delivery report"
    report.attach(status_part)
    headers = MIMEText(_original(to, verp).as_string().split("\n\n")[0] + "\n", "rfc822-headers")
    headers["Content-Description"] = "Undelivered Message Headers"
    report.attach(headers)
    return report.as_bytes()


def exim(verp: str, to: str, status: str = "5.0.0", diagnostic: str = "") -> bytes:
    """Exim's failure report: the permanent error text, the report, the whole message back."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["Envelope-to"] = verp
    report["Return-path"] = "<>"
    report["From"] = "Mail Delivery System <Mailer-Daemon@mx.example.org>"
    report["To"] = verp
    report["Subject"] = "Mail delivery failed: returning message to sender"
    report["Auto-Submitted"] = "auto-replied"
    report.attach(
        MIMEText(
            "This message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of its\n"
            f"recipients. The following address(es) failed:\n\n  {to}\n"
        )
    )
    report.attach(
        _status_part(
            {"Reporting-MTA": "dns; mx.example.org"},
            [
                {
                    "Action": "failed",
                    "Final-Recipient": f"rfc822;{to}",
                    "Status": status,
                    "Remote-MTA": "dns; mx2.example.org",
                    **({"Diagnostic-Code": diagnostic} if diagnostic else {}),
                }
            ],
        )
    )
    report.attach(MIMEMessage(_original(to, verp)))
    return report.as_bytes()


def gmail(verp: str, to: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A Gmail-style report: an HTML and text explanation with an icon (multipart/related),
    then the report, whose Diagnostic-Code runs over several folded lines."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"
    report["To"] = verp
    report["Subject"] = "Delivery Status Notification (Failure)"
    report["Auto-Submitted"] = "auto-replied"
    words = MIMEMultipart(
        "alternative",
        _subparts=[
            MIMEText("** Address not found **\n\nYour message wasn't delivered.\n"),
            MIMEText("<html><body><h1>Address not found</h1></body></html>", "html"),
        ],
    )
    explanation = MIMEMultipart("related", _subparts=[words])
    report.attach(explanation)
    diagnostic = (
        f"smtp; 550-{status} The email account that you tried to reach does not exist. Please"
        f" try\n 550-{status} double-checking the recipient's email address for typos or\n"
        f" 550 {status} unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser - gsmtp"
    )
    report.attach(
        _status_part(
            {
                "Reporting-MTA": "dns; googlemail.com",
                "Received-From-MTA": "dns; renewd.example.com",
                "Arrival-Date": formatdate(),
            },
            [
                {
                    "Final-Recipient": f"rfc822; {to}",
                    "Action": action,
                    "Status": status,
                    "Remote-MTA": "dns; gmail-smtp-in.l.google.com. (the server for gmail.com.)",
                    "Diagnostic-Code": diagnostic,
                    "Last-Attempt-Date": formatdate(),
                }
            ],
        )
    )
    report.attach(MIMEMessage(_original(to, verp)))
    return report.as_bytes()


def auto_reply(verp: str) -> bytes:
    """Not a report at all: what an out-of-office reply to the return path looks like."""
    reply = MIMEText("I am away until Monday.\n")
    reply["From"] = "someone@example.cn"
    reply["To"] = verp
    reply["Subject"] = "Out of office"
    return reply.as_bytes()


def maildir(folder: Path) -> Path:
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder


def deliver(folder: Path, data: bytes) -> str:
    """Into the Maildir as a delivery agent does: written in tmp/, then renamed into new/."""
    name = f"{os.getpid()}.{next(_names)}.mx.example.net"
    (folder / "tmp" / name).write_bytes(data)
    os.rename(folder / "tmp" / name, folder / "new" / name)
    return name
