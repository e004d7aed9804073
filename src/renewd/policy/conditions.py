"""Conditions over derived facts: AST, negation normal form, durable_rules JSON, day windows.

A condition is written once in YAML and used twice: compiled to durable_rules JSON (which really
decides), and analysed for the days on which it can possibly hold (which lets the evaluator skip
mailboxes no rule can match today, and tells each rule which date its steps count from).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from renewd.core.facts import FACTS, MONEY_SCALE, OPTIONAL, FactType
from renewd.core.model import Anchor

Value = int | bool | str | Decimal

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
NEGATED = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "gt": "le", "le": "gt"}
DURABLE_OP = {"ne": "$neq", "lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}

# Day facts and the anchor they count from; the sign turns them into an offset from the anchor
# date (negative before it, positive after it).
DAY_FACTS: dict[str, tuple[Anchor, int]] = {
    "days_to_expiry": (Anchor.EXPIRY, -1),
    "days_since_expiry": (Anchor.EXPIRY, 1),
    "domain_days_to_expiry": (Anchor.DOMAIN, -1),
}
# Steps further than this from the anchor are out of reach: a window touching it is unbounded.
HORIZON = 3660
UNIVERSE = frozenset(range(-HORIZON, HORIZON + 1))


@dataclass(frozen=True)
class Cmp:
    """`fact op value`, or `fact op other_fact` when `other` is set."""

    fact: str
    op: str
    value: Value | None = None
    other: str = ""


@dataclass(frozen=True)
class All:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Not:
    item: Cond


Cond = Cmp | All | AnyOf | Not


def nnf(cond: Cond, negate: bool = False) -> Cond:
    """Push every `not` down to the comparisons, which durable_rules can express directly."""
    if isinstance(cond, Not):
        return nnf(cond.item, not negate)
    if isinstance(cond, Cmp):
        return Cmp(cond.fact, NEGATED[cond.op], cond.value, cond.other) if negate else cond
    items = tuple(nnf(item, negate) for item in cond.items)
    if isinstance(cond, All):
        return AnyOf(items) if negate else All(items)
    return All(items) if negate else AnyOf(items)


def engine_value(fact: str, value: Value) -> Any:
    """Money goes to the engine as integer 1/MONEY_SCALE units, so comparisons are exact."""
    if FACTS[fact] is FactType.MONEY:
        return int(Decimal(value) * MONEY_SCALE)
    return value


def to_durable(cond: Cond) -> dict[str, Any]:
    """durable_rules JSON for a condition in negation normal form."""
    if isinstance(cond, All):
        return {"$and": [to_durable(item) for item in cond.items]}
    if isinstance(cond, AnyOf):
        return {"$or": [to_durable(item) for item in cond.items]}
    if isinstance(cond, Not):
        raise ValueError("condition must be in negation normal form")
    right: Any = {"$m": cond.other} if cond.other else engine_value(cond.fact, _present(cond.value))
    compiled = {cond.fact: right} if cond.op == "eq" else {DURABLE_OP[cond.op]: {cond.fact: right}}
    if cond.other in OPTIONAL:
        # durable_rules takes a comparison with a missing `$m` fact inside an `$and` as true
        # (alone, as false): it must be there for the comparison to hold
        return {"$and": [{"$ex": {cond.other: 1}}, compiled]}
    return compiled


def _present(value: Value | None) -> Value:
    if value is None:
        raise ValueError("comparison without a value")
    return value


def referenced(cond: Cond) -> set[str]:
    """The facts a condition reads: only those are sent to the engine."""
    if isinstance(cond, Cmp):
        return {cond.fact, cond.other} - {""}
    if isinstance(cond, Not):
        return referenced(cond.item)
    return (
        set().union(*(referenced(item) for item in cond.items))
        if isinstance(cond, All | AnyOf)
        else set()
    )


def comparisons(cond: Cond) -> Iterator[Cmp]:
    """Every comparison in a condition, in the order written."""
    if isinstance(cond, Cmp):
        yield cond
    elif isinstance(cond, Not):
        yield from comparisons(cond.item)
    else:
        for item in cond.items:
            yield from comparisons(item)


def window(cond: Cond, anchor: Anchor) -> frozenset[int]:
    """Offsets from the anchor date on which `cond` (in NNF) can hold; UNIVERSE when unconstrained.

    An over-approximation: facts other than the anchor's day facts count as always possibly true.
    """
    if isinstance(cond, All):
        result = UNIVERSE
        for item in cond.items:
            result &= window(item, anchor)
        return result
    if isinstance(cond, AnyOf):
        result = frozenset[int]()
        for item in cond.items:
            result |= window(item, anchor)
        return result
    if isinstance(cond, Not):
        raise ValueError("condition must be in negation normal form")
    return _leaf_window(cond, anchor)


def _leaf_window(cond: Cmp, anchor: Anchor) -> frozenset[int]:
    day = DAY_FACTS.get(cond.fact)
    if day is None or day[0] is not anchor or cond.other:
        return UNIVERSE
    sign = day[1]
    value = _present(cond.value)
    assert isinstance(value, int)  # noqa: S101 - the schema only lets integers reach day facts
    holds = COMPARE[cond.op]
    return frozenset(offset for offset in UNIVERSE if holds(sign * offset, value))


def is_bounded(offsets: frozenset[int]) -> bool:
    return -HORIZON not in offsets and HORIZON not in offsets
