"""Facts derived from one mailbox on one day: the only thing the policy's conditions can see."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from renewd.core.cycles import CycleState
from renewd.core.model import Mailbox

# The engine compares numbers as JSON numbers; money is passed as integers of 1/10000 of a
# unit so that `balance >= renewal_fee` is exact (up to 9e11 units, far beyond any balance).
MONEY_SCALE = 10_000


class FactType(Enum):
    INT = "integer"
    BOOL = "boolean"
    MONEY = "money"
    STR = "string"


FACTS: dict[str, FactType] = {
    "days_to_expiry": FactType.INT,
    "days_since_expiry": FactType.INT,
    "domain_days_to_expiry": FactType.INT,
    "renewal_months": FactType.INT,
    "is_paid": FactType.BOOL,
    "auto_renew": FactType.BOOL,
    "balance_covers_fee": FactType.BOOL,
    "renewed": FactType.BOOL,
    "reminded": FactType.BOOL,
    "email_bounced": FactType.BOOL,
    "sms_undelivered": FactType.BOOL,
    "domain_via_provider": FactType.BOOL,
    "has_phone": FactType.BOOL,
    "balance": FactType.MONEY,
    "renewal_fee": FactType.MONEY,
    "edition": FactType.STR,
    "locale": FactType.STR,
    "currency": FactType.STR,
}

# Facts `derive` leaves out when the snapshot has no value for them.
OPTIONAL = frozenset({"domain_days_to_expiry"})


def derive(
    mailbox: Mailbox,
    day: date,
    *,
    is_paid: bool,
    available: Decimal,
    cycle: CycleState,
    short: bool = False,
) -> dict[str, Any]:
    """The facts for `day`. `available` is the account balance left after earlier deductions;
    `short` makes the balance count as not covering the fee (billing declined the charge).

    `domain_days_to_expiry` is absent when the snapshot has no domain expiry date: every
    comparison with a missing fact is false, negated or not.
    """
    since = (day - mailbox.expires_on).days
    facts: dict[str, Any] = {
        "days_to_expiry": -since,
        "days_since_expiry": since,
        "renewal_months": mailbox.renewal_months,
        "is_paid": is_paid,
        "auto_renew": mailbox.auto_renew,
        "balance_covers_fee": available >= mailbox.renewal_fee and not short,
        "renewed": cycle.renewed,
        "reminded": cycle.reminded,
        "email_bounced": "email" in cycle.undelivered,
        "sms_undelivered": "sms" in cycle.undelivered,
        "domain_via_provider": mailbox.domain_via_provider,
        "has_phone": bool(mailbox.phone),
        "balance": int(available * MONEY_SCALE),
        "renewal_fee": int(mailbox.renewal_fee * MONEY_SCALE),
        "edition": mailbox.edition,
        "locale": mailbox.locale,
        "currency": mailbox.currency,
    }
    if mailbox.domain_expires_on is not None:
        facts["domain_days_to_expiry"] = (mailbox.domain_expires_on - day).days
    return facts
