"""What one template part may cost while it renders, and the estimates that refuse work before it
runs.

Repetition, powers and format widths run in C holding the GIL: no timer can stop them once they
start, so the size of what they would make is worked out from their operands first. What a part
writes, its loop iterations and calls, how deep its calls nest and how many templates it pulls in
are counted per render (`Budget`, one per thread).
"""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_SIZE = 262_144  # characters (or items) in any one value a template makes
MAX_OUTPUT = 262_144  # characters a part writes, its macros' and {% set %} blocks' output included
MAX_STEPS = 10_000  # loop iterations and calls in one part
MAX_RANGE = 10_000  # numbers in one range()
MAX_DEPTH = 32  # calls (macros, recursive loops) running inside one another
MAX_LOADS = 32  # includes, imports and extends in one part
MAX_INT_BITS = 8_192  # about 2,500 decimal digits
MAX_TEMPLATE_BYTES = 262_144  # a template file
MAX_JSON_INDENT = 16


class LimitError(Exception):
    """A template asked for more than a message template may do; `path` and `line` when known
    without a traceback (a file too large to load)."""

    def __init__(self, message: str, path: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.path, self.line = path, line


@dataclass
class Budget:
    """What one render has spent so far."""

    steps: int = 0
    written: int = 0
    depth: int = 0
    loads: int = 0
    sizes: dict[int, tuple[Any, int]] = field(default_factory=dict)

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise LimitError(f"more than {MAX_STEPS:,} loop iterations and calls")

    def load(self) -> None:
        self.loads += 1
        if self.loads > MAX_LOADS:
            raise LimitError(f"more than {MAX_LOADS} includes, imports and extends")

    def counted(self, items: Any) -> Iterator[Any]:
        """A loop's items, each one a step."""
        for item in items:
            self.step()
            yield item


_local = threading.local()


def current() -> Budget:
    """The running render's budget; outside a render (Jinja folding constants while it
    compiles) a fresh one, so every single operation is still bounded."""
    budget: Budget | None = getattr(_local, "budget", None)
    return budget if budget is not None else Budget()


def rendering() -> bool:
    return getattr(_local, "budget", None) is not None


def start() -> Budget | None:
    """Give this thread's renders a fresh budget; returns the one to put back with `restore`."""
    previous: Budget | None = getattr(_local, "budget", None)
    _local.budget = Budget()
    return previous


def restore(previous: Budget | None) -> None:
    _local.budget = previous


def measure(value: Any) -> int:
    """Characters or items in a value, nested lists, tuples and dicts counted in full (a list
    of one long string repeated is as long as its text when printed). Stops counting past
    MAX_SIZE; containers are remembered for the render, so shared ones cost one walk."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 1
    memo = current().sizes
    known = memo.get(id(value))
    if known is not None and known[0] is value:
        return int(known[1])
    total = len(value)
    for item in value.items() if isinstance(value, dict) else value:
        total += measure(item)
        if total > MAX_SIZE:
            break
    memo[id(value)] = (value, total)
    return total


def limit(size: int, what: str) -> None:
    if size > MAX_SIZE:
        raise LimitError(
            f"{what} would make {size:,} characters or items; a template value may have at "
            f"most {MAX_SIZE:,}"
        )


def limited(value: Any, what: str) -> Any:
    """The value, once it is known not to be too large."""
    limit(measure(value), what)
    return value


def _ints(left: Any, right: Any) -> bool:
    return isinstance(left, int) and isinstance(right, int)


def _bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise LimitError(f"{what} would make a number of {bits:,} bits; at most {MAX_INT_BITS:,}")


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `*`, `**`, `%` and `+` whose result would be too large, before Python makes it."""
    if operator == "*":
        _check_repeat(left, right)
    elif operator == "**":
        if _ints(left, right) and right > 0 and abs(left) > 1:
            _bits(left.bit_length() * right, "'**'")
    elif operator == "%":
        if isinstance(left, str):
            limit(printf_size(left, right), "'%' formatting")
    elif operator == "+" and _sequences(left, right):
        limit(measure(left) + measure(right), "'+'")


def _sequences(*values: Any) -> bool:
    return all(isinstance(v, str | bytes | list | tuple) for v in values)


def _check_repeat(left: Any, right: Any) -> None:
    if _ints(left, right):
        _bits(left.bit_length() + right.bit_length(), "'*'")
    elif isinstance(right, int) and _sequences(left):
        limit(measure(left) * max(right, 0), "'*'")
    elif isinstance(left, int) and _sequences(right):
        limit(measure(right) * max(left, 0), "'*'")


PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.?)")


def printf_size(template: str, args: Any) -> int:
    """What `template % args` may write: its text, every width and precision, every argument."""
    size = len(template)
    for width, precision, _kind in PRINTF.findall(template):
        if "*" in (width, precision):
            raise LimitError("'*' widths are not allowed in templates: write the width")
        size += int(width or 0) + int(precision or 0)
    if isinstance(args, dict):
        args = tuple(args.values())
    return size + sum(measure(v) for v in (args if isinstance(args, tuple) else (args,)))


_FORMATTER = string.Formatter()
_DIGITS = re.compile(r"\d+")


def format_size(template: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """What `template.format(...)` may write: each field as wide as its spec or the largest
    argument; a field inside a spec is refused (its width would come from the data)."""
    values = [*args, *kwargs.values()]
    largest = max((measure(v) for v in values), default=0)
    size = 0
    try:
        fields = list(_FORMATTER.parse(template))
    except ValueError:
        return len(template)  # str.format reports the same error itself
    for literal, name, spec, _conversion in fields:
        size += len(literal)
        if name is None:
            continue
        if spec and "{" in spec:
            raise LimitError("a format spec may not contain a {field}: write the width")
        size += largest + sum(int(d) for d in _DIGITS.findall(spec or ""))
    return size


def arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def replace_size(text: str, old: Any, new: Any, count: Any) -> int:
    old, new = str(old), str(new)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def join_size(separator: Any, items: list[Any]) -> int:
    return len(str(separator)) * max(len(items) - 1, 0) + sum(measure(i) for i in items)


def method_size(owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """What a string or number method would make, for the few that make more than they get."""
    if isinstance(owner, int) and name == "to_bytes":
        return _int(arg(args, kwargs, 0, "length", 1))
    if not isinstance(owner, str | bytes):
        return 0
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(len(owner), _int(arg(args, kwargs, 0, "width", 0)))
    if name == "expandtabs":
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        return len(owner) + tabs * _int(arg(args, kwargs, 0, "tabsize", 8))
    if name == "replace" and isinstance(owner, str):
        old, new = arg(args, kwargs, 0, "old", ""), arg(args, kwargs, 1, "new", "")
        return replace_size(owner, old, new, arg(args, kwargs, 2, "count", -1))
    if name == "translate" and isinstance(owner, str) and args and isinstance(args[0], dict):
        widest = max((measure(v) for v in args[0].values()), default=1)
        return len(owner) * widest
    if name in ("format", "format_map") and isinstance(owner, str):
        if name == "format_map" and args and isinstance(args[0], dict):
            return format_size(owner, (), args[0])
        return format_size(owner, args, kwargs)
    return 0
