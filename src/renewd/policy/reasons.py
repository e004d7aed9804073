"""Why a rule's condition holds or not, in words: `renewd explain`'s answer to "why not?".

durable_rules says only which rules matched. The compiled condition (in negation normal form,
as the engine got it) is checked here comparison by comparison with the same facts and the same
meaning: a missing fact makes every comparison false, negated or not; money is compared in the
engine's integer units. A property test holds this to the engine's answers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from renewd.core.facts import FACTS, MONEY_SCALE, FactType
from renewd.policy.conditions import COMPARE, All, AnyOf, Cmp, Cond, Not, engine_value

WORDS = {
    "eq": "",
    "ne": "anything but ",
    "lt": "less than ",
    "le": "at most ",
    "gt": "more than ",
    "ge": "at least ",
}


def holds(cond: Cond, facts: dict[str, Any]) -> bool:
    """Whether the condition holds for these facts (as derived for the engine)."""
    if isinstance(cond, Cmp):
        left, right = _sides(cond, facts)
        return left is not None and right is not None and bool(COMPARE[cond.op](left, right))
    if isinstance(cond, Not):
        raise ValueError("condition must be in negation normal form")
    if isinstance(cond, All):
        return all(holds(item, facts) for item in cond.items)
    return any(holds(item, facts) for item in cond.items)


def failures(cond: Cond, facts: dict[str, Any]) -> list[str]:
    """What keeps the condition from holding, one line per failed part; empty when it holds."""
    if holds(cond, facts):
        return []
    if isinstance(cond, All):
        if _between(cond):
            return [_between_text(cond, facts)]
        return [line for item in cond.items for line in failures(item, facts)]
    if isinstance(cond, AnyOf):
        return [_any_text(cond, facts)]
    assert isinstance(cond, Cmp)  # noqa: S101 - nnf leaves no Not
    return [_cmp_text(cond, facts)]


def show(fact: str, value: Any) -> str:
    """A fact's value as people read it: `true`, `120.00`, `12`."""
    if value is None:
        return "absent"
    if isinstance(value, bool):
        return str(value).lower()
    if FACTS.get(fact) is FactType.MONEY and isinstance(value, int):
        return money(Decimal(value) / MONEY_SCALE)
    return str(value)


def money(amount: Decimal) -> str:
    """At least two decimals, more only when there are more."""
    return f"{amount:.2f}" if amount == round(amount, 2) else str(amount.normalize())


def _sides(cond: Cmp, facts: dict[str, Any]) -> tuple[Any, Any]:
    right = facts.get(cond.other) if cond.other else engine_value(cond.fact, _value(cond))
    return facts.get(cond.fact), right


def _value(cond: Cmp) -> Any:
    if cond.value is None:
        raise ValueError("comparison without a value")
    return cond.value


def _is(fact: str, facts: dict[str, Any]) -> str:
    value = facts.get(fact)
    if value is None:
        return f"{fact} is absent" + (
            " (no domain expiry date)" if fact.startswith("domain") else ""
        )
    return f"{fact} is {show(fact, value)}"


def _operand(cond: Cmp, facts: dict[str, Any]) -> str:
    if cond.other:
        return f"{cond.other} ({show(cond.other, facts.get(cond.other))})"
    return show(cond.fact, engine_value(cond.fact, _value(cond)))


def _cmp_text(cond: Cmp, facts: dict[str, Any]) -> str:
    if cond.op == "ne" and isinstance(cond.value, bool) and not cond.other:
        return f"{_is(cond.fact, facts)}, needs {show(cond.fact, not cond.value)}"
    return f"{_is(cond.fact, facts)}, needs {WORDS[cond.op]}{_operand(cond, facts)}"


def _any_text(cond: AnyOf, facts: dict[str, Any]) -> str:
    items = cond.items
    if items and all(isinstance(i, Cmp) and i.op == "eq" and not i.other for i in items):
        facts_named = {i.fact for i in items if isinstance(i, Cmp)}
        if len(facts_named) == 1:
            (fact,) = facts_named
            values = ", ".join(_operand(i, facts) for i in items if isinstance(i, Cmp))
            return f"{_is(fact, facts)}, needs one of {values}"
    return "needs one of: " + " | ".join("; ".join(failures(i, facts)) for i in items)


def _between(cond: All) -> bool:
    """`between: [low, high]` as the loader writes it: fact >= low and fact <= high."""
    if len(cond.items) != 2:
        return False
    low, high = cond.items
    return (
        isinstance(low, Cmp)
        and isinstance(high, Cmp)
        and (low.op, high.op) == ("ge", "le")
        and low.fact == high.fact
        and not (low.other or high.other)
    )


def _between_text(cond: All, facts: dict[str, Any]) -> str:
    low, high = cond.items
    assert isinstance(low, Cmp) and isinstance(high, Cmp)  # noqa: S101 - checked by _between
    return f"{_is(low.fact, facts)}, needs {_operand(low, facts)} to {_operand(high, facts)}"
