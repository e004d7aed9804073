"""The plain values that flow through renewd: mailboxes in, decisions out."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import Any, TypeVar

from renewd.core.money import Funds

T = TypeVar("T")


def pickled_by_fields(cls: type[T]) -> type[T]:
    """Pickle as the constructor's arguments: a big day's plan is read back from disk, and a
    frozen dataclass's default unpickling (field by field through setattr) is twice as slow."""
    values = attrgetter(*(f.name for f in fields(cls)))  # type: ignore[arg-type]

    def reduce(self: T) -> tuple[type[T], tuple[Any, ...]]:
        return cls, values(self)

    setattr(cls, "__reduce__", reduce)  # noqa: B010 - a method added to a built class
    return cls


class Kind(StrEnum):
    """What a decision does; the names are part of the jsonl interface."""

    NOTIFY = "notify"
    DEDUCT = "deduct"
    DELETE = "delete"


class Anchor(StrEnum):
    """The date a rule counts its days from; a step is an offset from it."""

    EXPIRY = "expiry"
    DOMAIN = "domain"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Mailbox:
    """One validated snapshot row. Money is Decimal, dates are calendar days in the policy zone."""

    mailbox_id: str
    account_id: str
    edition: str
    expires_on: datetime.date
    auto_renew: bool
    balance: Decimal
    renewal_fee: Decimal
    currency: str
    renewal_months: int
    email: str
    phone: str
    locale: str
    domain: str
    domain_via_provider: bool
    domain_expires_on: datetime.date | None
    anchor_day: int | None = None  # the day of the month renewals land on, when the export knows it
    line: int = 0

    def anchor_date(self, anchor: Anchor) -> datetime.date | None:
        return self.expires_on if anchor is Anchor.EXPIRY else self.domain_expires_on


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class StepKey:
    """Identifies one step of one rule in one cycle: the unit that is done at most once.

    A cycle is the anchor date (one `expires_on` value, or one `domain_expires_on` value for
    domain rules); the step is the day offset from it (negative before, positive after).
    """

    mailbox_id: str
    rule: str
    cycle: datetime.date
    step: int


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Decision:
    """One action renewd would take (or, when `superseded_by` is set, would have taken)."""

    date: datetime.date
    mailbox_id: str
    account_id: str
    rule: str
    cycle: datetime.date
    step: int
    kind: Kind
    anchor: Anchor = Anchor.EXPIRY
    channel: str = ""
    template: str = ""
    amount: Decimal | None = None
    currency: str = ""
    superseded_by: str = ""
    funds: Funds | None = None  # the account's money as this mailbox saw it (expiry rules)
    next_expiry: datetime.date | None = None  # where a renewal of this cycle moves expires_on
    anchor_day: int = 0  # the day of the month that renewal is anchored on

    @property
    def key(self) -> StepKey:
        return StepKey(self.mailbox_id, self.rule, self.cycle, self.step)


@dataclass(frozen=True, slots=True)
class RowError:
    """A snapshot row that was rejected: where, which field, and why."""

    path: str
    line: int
    field: str
    reason: str
    mailbox_id: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"
