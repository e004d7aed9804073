"""The plain values that flow through renewd: mailboxes in, decisions out."""

from __future__ import annotations

import datetime
from dataclasses import MISSING, dataclass, fields
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import Any, TypeVar

from renewd.core.money import Funds

T = TypeVar("T")


def pickled_by_fields(cls: type[T]) -> type[T]:
    """Built faster, and pickled as the constructor's arguments.

    Millions of these are made on a big day (every candidate row, every decision), and a big
    day's plan is written to disk and read back. A frozen dataclass's own `__init__` sets each
    field through `object.__setattr__`, looked up by name, and its default unpickling goes
    field by field through setattr: this `__init__` sets the slots through their descriptors
    (the same fields and defaults, about twice as fast), and unpickling calls it.
    """
    _quick_init(cls)
    values = attrgetter(*(f.name for f in fields(cls)))  # type: ignore[arg-type]

    def reduce(self: T) -> tuple[type[T], tuple[Any, ...]]:
        return cls, values(self)

    setattr(cls, "__reduce__", reduce)  # noqa: B010 - a method added to a built class
    return cls


def _quick_init(cls: type[Any]) -> None:
    """Replace a frozen, slotted dataclass's `__init__` with one that sets each slot through its
    member descriptor (no default factories, no `__post_init__`: checked here)."""
    if hasattr(cls, "__post_init__") or any(f.default_factory is not MISSING for f in fields(cls)):
        raise TypeError(f"{cls.__name__}: a quick __init__ cannot run __post_init__ or factories")
    scope: dict[str, Any] = {}
    params, body = [], []
    for n, f in enumerate(fields(cls)):
        scope[f"_set{n}"] = cls.__dict__[f.name].__set__
        if f.default is MISSING:
            params.append(f.name)
        else:
            scope[f"_default{n}"] = f.default
            params.append(f"{f.name}=_default{n}")
        body.append(f"    _set{n}(self, {f.name})\n")
    source = f"def __init__(self, {', '.join(params)}):\n{''.join(body)}"
    exec(source, scope)  # noqa: S102 - the source is built from the class's own field names
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init


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
