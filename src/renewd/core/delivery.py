"""What a receipt says about a message that left: its delivery state, and the order states come in.

Receipts come from outside (Twilio's status callbacks, an MTA's bounces) and in any order: a
late `sent` must never overwrite `delivered`, and a repeat must change nothing. So every state
has a rank per channel and a receipt only ever moves a message to a higher one; among final
states (equal rank) the first one stays.
"""

from __future__ import annotations

from dataclasses import dataclass

# Twilio's message statuses (its published API's `message_enum_status`, inbound ones aside).
SMS_ORDER = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "partially_delivered": 4,
    "read": 5,
}
# What a delivery status notification (RFC 3464) says: `delayed` (4.x.x, the MTA still tries),
# `delivered` (an MTA delivered or relayed it), or final: `bounced` (a hard bounce, 5.x.x) or
# `soft-bounced` (4.x.x, given up). A bounce outranks `delivered`: renewd asks for no success
# reports, and one (`relayed` to a host that reports nothing, a forwarding mailbox, or forged by
# anyone who can mail the return path) says only that one hop took it; a bounce from further on
# is the truer word, and a report of success must not hide it.
EMAIL_ORDER = {"delayed": 1, "delivered": 2, "soft-bounced": 3, "bounced": 3}
ORDER = {"sms": SMS_ORDER, "email": EMAIL_ORDER}

# Final states in which the message did not reach the customer.
NOT_ARRIVED = frozenset({"undelivered", "failed", "canceled", "bounced", "soft-bounced"})

MAX_DETAIL = 300  # characters of a diagnostic kept: enough for any MTA's line


@dataclass(frozen=True)
class Receipt:
    """One report about one message: by its outbox row (`action_id`, from a bounce's return
    path) or by the provider's id for it (`provider_id`, Twilio's MessageSid)."""

    channel: str
    status: str
    code: str = ""  # Twilio's ErrorCode (30003) or the DSN's status (5.1.1)
    detail: str = ""  # the diagnostic, as the reporter wrote it
    action_id: int | None = None
    provider_id: str = ""


def replaceable(channel: str, status: str) -> tuple[str, ...]:
    """The delivery states a receipt of `status` may replace: none yet (""), and every state
    that comes before it. A repeat, a late report and a second final report replace nothing."""
    order = ORDER[channel]
    rank = order[status]
    return ("", *sorted(state for state, r in order.items() if r < rank))


def did_not_arrive(outbox_state: str, delivery: str) -> bool:
    """A message that failed for good when sent, or that a receipt says never arrived."""
    return outbox_state == "failed" or delivery in NOT_ARRIVED


def clean(text: str, limit: int = MAX_DETAIL) -> str:
    """A reporter's text as one printable line: it is shown in `renewd history` and logs."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
