"""A rule's `when:` as written in YAML, read into a condition checked against the facts' types."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from renewd.config.yamlsrc import LocatedList, LocatedMap, Reader
from renewd.core.errors import suggest
from renewd.core.facts import FACTS, FactType
from renewd.policy.conditions import All, AnyOf, Cmp, Cond, Not

OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "between")
ORDERED_TYPES = (FactType.INT, FactType.MONEY)
# durable_rules hangs compiling an `$or` of more than 512 branches; stay well below.
MAX_WIDTH = 256
MONEY_LIMIT = Decimal(10) ** 15  # as many whole digits as a snapshot amount may have


def read_condition(r: Reader, value: Any, line: int) -> Cond | None:
    """YAML condition -> Cond. A list or a mapping with several keys means all of them."""
    if isinstance(value, LocatedList):
        items = [
            read_condition(r, item, item_line)
            for item, item_line in zip(value, value.lines, strict=True)
        ]
        return All(tuple(i for i in items if i is not None)) if None not in items else None
    if not isinstance(value, LocatedMap) or not value:
        r.problem(line, "a condition must be a mapping such as {days_to_expiry: 7}")
        return None
    parts = [_read_entry(r, key, value[key], value.lines[key]) for key in value]
    if None in parts:
        return None
    conds = [p for p in parts if p is not None]
    return conds[0] if len(conds) == 1 else All(tuple(conds))


def _read_entry(r: Reader, key: str, value: Any, line: int) -> Cond | None:
    if key in ("all", "any"):
        if not isinstance(value, LocatedList) or not value or len(value) > MAX_WIDTH:
            r.problem(line, f"{key!r} needs a list of 1 to {MAX_WIDTH} conditions")
            return None
        items = [
            read_condition(r, item, item_line)
            for item, item_line in zip(value, value.lines, strict=True)
        ]
        if None in items:
            return None
        conds = tuple(i for i in items if i is not None)
        return All(conds) if key == "all" else AnyOf(conds)
    if key == "not":
        inner = read_condition(r, value, line)
        return Not(inner) if inner is not None else None
    if key not in FACTS:
        r.problem(line, f"unknown fact {key!r}{suggest(key, [*FACTS, 'all', 'any', 'not'])}")
        return None
    return _read_comparison(r, key, value, line)


def _read_comparison(r: Reader, fact: str, value: Any, line: int) -> Cond | None:
    if not isinstance(value, LocatedMap):
        operand = _operand(r, fact, value, line)
        return None if operand is None else Cmp(fact, "eq", *operand)
    conds: list[Cond] = []
    for op in value:
        op_line = value.lines[op]
        if op not in OPS:
            r.problem(op_line, f"unknown operator {op!r} for {fact}{suggest(op, OPS)}")
            return None
        if op in ("lt", "le", "gt", "ge", "between") and FACTS[fact] not in ORDERED_TYPES:
            r.problem(op_line, f"{op!r} needs a number, but {fact} is a {FACTS[fact].value}")
            return None
        cond = _read_op(r, fact, op, value[op], op_line)
        if cond is None:
            return None
        conds.append(cond)
    return conds[0] if len(conds) == 1 else All(tuple(conds))


def _read_op(r: Reader, fact: str, op: str, value: Any, line: int) -> Cond | None:
    if op in ("in", "not_in", "between"):
        wrong = op == "between" and len(value) != 2 if isinstance(value, list) else True
        if not value or wrong or len(value) > MAX_WIDTH:
            shape = "[low, high]" if op == "between" else f"a list of 1 to {MAX_WIDTH} values"
            r.problem(line, f"{op!r} needs {shape}")
            return None
        operands = [_operand(r, fact, item, line, allow_field=False) for item in value]
        if None in operands:
            return None
        values = [o[0] for o in operands if o is not None]
        if op == "between":
            return All((Cmp(fact, "ge", values[0]), Cmp(fact, "le", values[1])))
        eqs = tuple(Cmp(fact, "eq", v) for v in values)
        return AnyOf(eqs) if op == "in" else Not(AnyOf(eqs))
    operand = _operand(r, fact, value, line)
    return None if operand is None else Cmp(fact, op, *operand)


def _operand(
    r: Reader, fact: str, value: Any, line: int, allow_field: bool = True
) -> tuple[Any, str] | None:
    """(constant, "") or (None, other_fact), checked against the fact's type."""
    kind = FACTS[fact]
    if isinstance(value, LocatedMap) and allow_field and list(value) == ["field"]:
        other = value["field"]
        if not isinstance(other, str) or other not in FACTS:
            r.problem(line, f"unknown fact {other!r}{suggest(str(other), FACTS)}")
            return None
        if FACTS[other] is not kind:
            r.problem(
                line, f"cannot compare {fact} ({kind.value}) with {other} ({FACTS[other].value})"
            )
            return None
        return None, other
    constant = _constant(kind, value)
    if constant is None:
        r.problem(line, f"{fact} is a {kind.value}, got {value!r}")
        return None
    return constant, ""


def _constant(kind: FactType, value: Any) -> Any:
    if kind is FactType.BOOL:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if kind is FactType.INT:
        return value if isinstance(value, int) else None
    if kind is FactType.STR:
        return value if isinstance(value, str) else None
    if isinstance(value, int | float | str):
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return None
        return amount if amount.is_finite() and amount.copy_abs() < MONEY_LIMIT else None
    return None
