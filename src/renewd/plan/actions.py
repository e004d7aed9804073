"""A due step's decisions for one mailbox: made millions of times in a long simulation, so made
without the frozen dataclass's `__init__`, which sets each field through `object.__setattr__`
(a `Decision` of 16 fields took 5 us that way, 2 us this way)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from datetime import date
from typing import Any, TypeVar

from renewd.core.cycles import Cycle
from renewd.core.model import Decision, Kind, Mailbox, StepKey
from renewd.core.money import Funds
from renewd.policy.model import Rule

T = TypeVar("T")
DEDUCT, NOTIFY, DELETE = Kind.DEDUCT, Kind.NOTIFY, Kind.DELETE  # plain names: see plan.evaluate


def constructor(cls: type[T]) -> Callable[..., T]:
    """A function taking every field of `cls` (a slotted dataclass) in order, positionally, and
    returning the instance its `__init__` would make: the same fields set to the same values,
    through the slots' own setters (which a frozen class's `__setattr__` does not guard).

    Only a class whose `__init__` does nothing else qualifies: no `__post_init__`, no field left
    out of `__init__`; anything else is refused here, once, at import.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    plain = all(f.init and f.default_factory is MISSING for f in fields(cls))  # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or not plain or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__}: not a plain slotted dataclass")
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    scope.update({f"set_{name}": getattr(cls, name).__set__ for name in names})
    body = "".join(f"    set_{name}(self, {name})\n" for name in names)
    source = f"def make({', '.join(names)}):\n    self = new(cls)\n{body}    return self\n"
    exec(source, scope)  # noqa: S102 - our own text, made from the class's field names
    make: Callable[..., T] = scope["make"]
    return make


decision = constructor(Decision)
step_key = constructor(StepKey)


class Actions:
    """What each rule does, kept by rule and by whether the mailbox has a phone."""

    def __init__(self) -> None:
        self._kinds: dict[tuple[str, bool], tuple[tuple[Kind, str, str], ...]] = {}

    def of(
        self,
        rule: Rule,
        key: StepKey,
        mailbox: Mailbox,
        today: date,
        superseded_by: str,
        funds: Funds,
        cycle: Cycle,
    ) -> list[Decision]:
        """A rule's actions in the order they happen: charge, tell, then delete."""
        phone = bool(mailbox.phone)
        kinds = self._kinds.get((rule.id, phone))
        if kinds is None:
            kinds = self._kinds[rule.id, phone] = _kinds(rule, phone)
        mailbox_id, account_id, anchor = mailbox.mailbox_id, mailbox.account_id, rule.anchor
        cycle_key, step, next_end, anchor_day = (
            key.cycle,
            key.step,
            cycle.next_end,
            cycle.anchor_day,
        )
        return [
            decision(
                today,
                mailbox_id,
                account_id,
                rule.id,
                cycle_key,
                step,
                kind,
                anchor,
                channel,
                template,
                mailbox.renewal_fee if kind is DEDUCT else None,
                mailbox.currency if kind is DEDUCT else "",
                superseded_by,
                funds,
                next_end,
                anchor_day,
            )
            for kind, channel, template in kinds
        ]


def _kinds(rule: Rule, phone: bool) -> tuple[tuple[Kind, str, str], ...]:
    """What a rule does for a mailbox with or without a phone, in order: (kind, channel,
    template)."""
    kinds = [(DEDUCT, "", "")] if rule.deduct else []
    kinds += [(NOTIFY, c, rule.template) for c in rule.notify if c != "sms" or phone]
    kinds += [(DELETE, "", "")] if rule.delete else []
    return tuple(kinds)
