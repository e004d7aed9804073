"""Facts derived from one mailbox on one day: the only thing the policy's conditions can see."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


# How each fact is worked out, as an expression over `derive`'s arguments (`since`: days since
# `expires_on`). One table for both `derive` (every fact, for the engine and for explain) and
# `deriver` (the facts a policy reads, in the engine's order, for its memo): they cannot differ.
FORMULAS: dict[str, str] = {
    "days_to_expiry": "-since",
    "days_since_expiry": "since",
    "renewal_months": "mailbox.renewal_months",
    "is_paid": "is_paid",
    "auto_renew": "mailbox.auto_renew",
    "balance_covers_fee": "available >= mailbox.renewal_fee and not short",
    "renewed": "cycle.renewed",
    "reminded": "cycle.reminded",
    "email_bounced": "'email' in cycle.undelivered",
    "sms_undelivered": "'sms' in cycle.undelivered",
    "domain_via_provider": "mailbox.domain_via_provider",
    "has_phone": "bool(mailbox.phone)",
    "balance": "int(available * MONEY_SCALE)",
    "renewal_fee": "int(mailbox.renewal_fee * MONEY_SCALE)",
    "edition": "mailbox.edition",
    "locale": "mailbox.locale",
    "currency": "mailbox.currency",
    # optional: None stands for "absent"
    "domain_days_to_expiry": (
        "None if mailbox.domain_expires_on is None else (mailbox.domain_expires_on - day).days"
    ),
}
Deriver = Callable[[Mailbox, date, bool, Decimal, CycleState, bool], tuple[Any, ...]]


def deriver(names: Sequence[str]) -> Deriver:
    """A function of `(mailbox, day, is_paid, available, cycle, short)`, as `derive` takes them,
    returning the values of the facts `names`, in that order, None for one absent: what
    `derive(...).get(name)` gives for each, without building the whole dict."""
    unknown = set(names) - FORMULAS.keys()
    if unknown:
        raise KeyError(f"unknown facts: {sorted(unknown)}")
    values = "".join(f"{FORMULAS[name]}, " for name in names)
    source = (
        "def derived(mailbox, day, is_paid, available, cycle, short):\n"
        "    since = (day - mailbox.expires_on).days\n"
        f"    return ({values})\n"
    )
    scope: dict[str, Any] = {"MONEY_SCALE": MONEY_SCALE}
    exec(source, scope)  # noqa: S102 - our own text, from FORMULAS
    made: Deriver = scope["derived"]
    return made


_ALL = tuple(FORMULAS)
_every = deriver(_ALL)


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
    facts = dict(zip(_ALL, _every(mailbox, day, is_paid, available, cycle, short), strict=True))
    for name in OPTIONAL:
        if facts[name] is None:
            del facts[name]
    return facts
