"""Reading a bounce: a delivery status notification (RFC 3464) as a Receipt, with the email package.

A DSN is `multipart/report; report-type=delivery-status` whose `message/delivery-status` part
holds blocks of fields: one about the message, then one per recipient with `Action` (failed,
delayed, delivered, relayed, expanded) and `Status` (RFC 3463: class.subject.detail, 5 for a
permanent failure, 4 for a temporary one), often a `Diagnostic-Code`. Which message it is about
comes from the address it was delivered to, our per-message return path, found in the headers
the delivering MTA adds (Delivered-To, X-Original-To, Envelope-To) or in To, where RFC 3464 puts
the envelope sender. Nothing here raises on a hostile file: the worst is `malformed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, Parser
from email.policy import compat32
from email.utils import collapse_rfc2231_value

from renewd.core.delivery import Receipt, clean
from renewd.delivery.receipts import ReturnPath

ADDRESSED = ("Delivered-To", "X-Original-To", "Envelope-To", "To")
# Which recipient block speaks for the message when there are several (an alias expanded):
# a failure over a delay over a success.
WEIGHT = {"failed": 3, "delayed": 2, "delivered": 1, "relayed": 1, "expanded": 1}


@dataclass(frozen=True)
class Report:
    """What a file in the bounce Maildir is: a receipt, a report about no message of ours
    (`receipt` None, `problem` empty), or malformed (`problem` says why)."""

    receipt: Receipt | None = None
    problem: str = ""


def read_report(data: bytes, return_path: ReturnPath) -> Report:
    """The receipt a DSN makes; never raises."""
    try:
        return _read(BytesParser(policy=compat32).parsebytes(data), return_path)
    except Exception as exc:  # the email package on hostile bytes: keep the file, say why
        return Report(problem=f"the email package could not read it ({type(exc).__name__})")


def _read(message: Message, return_path: ReturnPath) -> Report:
    report_type = collapse_rfc2231_value(message.get_param("report-type", ""))
    if message.get_content_type() != "multipart/report" or (
        str(report_type).lower() != "delivery-status"
    ):
        return Report(problem="not a delivery status notification (multipart/report)")
    blocks = _status_blocks(message)
    if blocks is None:
        return Report(problem="no message/delivery-status part")
    chosen = _recipient(blocks[1:])
    if chosen is None:
        return Report(problem="no recipient with a valid Action and Status")
    action, code, detail = chosen
    action_id = return_path.find(str(v) for name in ADDRESSED for v in message.get_all(name, []))
    if action_id is None:
        return Report()
    if action == "failed":
        status = "bounced" if code.startswith("5.") else "soft-bounced"
    else:
        status = "delayed" if action == "delayed" else "delivered"
    return Report(Receipt("email", status, code, detail, action_id=action_id))


def _status_blocks(message: Message) -> list[Message] | None:
    """The field blocks of the delivery-status part (the first is about the message)."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            blocks = [block for block in payload if isinstance(block, Message)]
        else:  # a transfer encoding hid the blocks from the parser: decode, then read each
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
            paragraphs = text.replace("\r\n", "\n").split("\n\n")
            blocks = [Parser(policy=compat32).parsestr(p, headersonly=True) for p in paragraphs]
            blocks = [block for block in blocks if len(block)]
        return blocks if len(blocks) >= 2 else None
    return None


def _recipient(blocks: list[Message]) -> tuple[str, str, str] | None:
    """The recipient block that speaks for the message: its action, status code, diagnostic."""
    best: tuple[int, tuple[str, str, str]] | None = None
    for block in blocks:
        action = str(block.get("Action", "")).strip().lower()
        code = _status(str(block.get("Status", "")))
        if action not in WEIGHT or not code:
            continue
        diagnostic = str(block.get("Diagnostic-Code", ""))
        kind, separator, text = diagnostic.partition(";")
        detail = clean(text if separator and " " not in kind.strip() else diagnostic)
        if best is None or WEIGHT[action] > best[0]:
            best = (WEIGHT[action], (action, code, detail))
    return best[1] if best else None


def _status(value: str) -> str:
    """An RFC 3463 status code (`5.1.1`, possibly followed by a comment), or ""."""
    words = value.split()
    parts = words[0].split(".") if words else []
    valid = (
        len(parts) == 3
        and parts[0] in ("2", "4", "5")
        and all(p.isdigit() and p.isascii() and len(p) <= 3 for p in parts[1:])
    )
    return ".".join(parts) if valid else ""
