"""The plain values that flow through renewd: mailboxes in, decisions out."""

from __future__ import annotations

import datetime
from collections.abc import Callable
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


def constructor(cls: type[T]) -> Callable[..., T]:
    """A function taking every field of `cls` in order, positionally, and returning the instance
    its `__init__` would make, without the call through the class (the evaluator's hot path)."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    head = f"def make({', '.join(names)}):\n    self = _new(_cls)\n"
    make: Callable[..., T] = _through_slots(cls, head, "    return self\n", {"_cls": cls})
    return make


def _quick_init(cls: type[Any]) -> None:
    """Replace a frozen, slotted dataclass's `__init__` with one that sets each slot through its
    member descriptor: the same fields and defaults."""
    scope: dict[str, Any] = {}
    params = []
    for n, f in enumerate(fields(cls)):
        if f.default is MISSING:
            params.append(f.name)
        else:
            scope[f"_default{n}"] = f.default
            params.append(f"{f.name}=_default{n}")
    init = _through_slots(cls, f"def __init__(self, {', '.join(params)}):\n", "", scope)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init


def _through_slots(
    cls: type[Any], head: str, tail: str, scope: dict[str, Any]
) -> Callable[..., Any]:
    """The function `head` + a line setting each field on `self` through its slot's own setter
    (which a frozen class's `__setattr__` does not guard) + `tail`. Only a class whose
    `__init__` does nothing else qualifies: no `__post_init__`, no default factory, no field
    left out of `__init__`; anything else is refused, once, at import."""
    plain = all(f.init and f.default_factory is MISSING for f in fields(cls))
    if hasattr(cls, "__post_init__") or not plain or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__}: not a plain slotted dataclass")
    scope = {**scope, "_new": object.__new__}
    body = []
    for n, f in enumerate(fields(cls)):
        scope[f"_set{n}"] = cls.__dict__[f.name].__set__
        body.append(f"    _set{n}(self, {f.name})\n")
    exec(head + "".join(body) + tail, scope)  # noqa: S102 - made from the class's field names
    name = head.split("(", 1)[0].removeprefix("def ")
    made: Callable[..., Any] = scope[name]
    return made


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
