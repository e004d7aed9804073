"""Mailboxes as plain tuples, for the candidates that wait on disk: a simulation of millions
writes and reads back hundreds of thousands, and a Mailbox pickled as itself costs its Python
`__reduce__`, a reduce for each Decimal and date, and on reading the frozen `__init__`
(5 us a Mailbox to write, 2 us as a tuple of str, int and bool)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import date
from decimal import Decimal
from typing import Any

from renewd.core.model import Mailbox, constructor

Packed = tuple[Any, ...]


def _codec() -> tuple[Callable[[Mailbox], Packed], Callable[[Packed], Mailbox]]:
    """`pack` and `unpack`, written from Mailbox's fields: a Decimal as its exact text, a date
    as its ordinal, anything else as it is (so a field added later still goes through whole)."""
    out, back = [], []
    for n, field in enumerate(fields(Mailbox)):
        value, item = f"m.{field.name}", f"t[{n}]"
        if field.type == "Decimal":
            out.append(f"str({value})")
            back.append(f"Decimal({item})")
        elif field.type == "datetime.date":
            out.append(f"{value}.toordinal()")
            back.append(f"day({item})")
        elif field.type == "datetime.date | None":
            out.append(f"None if {value} is None else {value}.toordinal()")
            back.append(f"None if {item} is None else day({item})")
        else:
            out.append(value)
            back.append(item)
    source = (
        f"def pack(m):\n    return ({', '.join(out)},)\n"
        f"def unpack(t):\n    return make({', '.join(back)})\n"
    )
    scope: dict[str, Any] = {"Decimal": Decimal, "day": date.fromordinal}
    scope["make"] = constructor(Mailbox)
    exec(source, scope)  # noqa: S102 - our own text, made from Mailbox's field names
    return scope["pack"], scope["unpack"]


pack, unpack = _codec()
