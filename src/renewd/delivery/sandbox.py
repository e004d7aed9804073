"""Jinja's sandbox with limits: a template can neither reach Python's internals nor make a value,
a loop or an output too large to handle.

Checks sit where the work happens: the binary operators and calls the sandbox intercepts, every
filter, and a pass over each parsed template that routes its loops, its output, `~` and its
list and dict literals through counting filters. Sizes are refused before the work is done;
see `limits` for the figures.
"""

from __future__ import annotations

import functools
import os
import posixpath
from collections.abc import Callable, Iterable
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.loaders import split_template_path
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer
from markupsafe import soft_str

from renewd.delivery import limits
from renewd.delivery.limits import LimitError, arg, current, limit, limited, measure

# Where a part's body may run more than once per render: its literal text counts as written.
_REPEATING = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock)
_REPEATING_BLOCKS = (*_REPEATING, nodes.Block)


class _Guard(NodeTransformer):
    """Rewrites a parsed template so that its loops, output, `~` and literals are counted."""

    def __init__(self) -> None:
        self.repeating = 0

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> nodes.Node:
        inside = isinstance(node, _REPEATING_BLOCKS)
        self.repeating += inside
        try:
            result: nodes.Node = super().generic_visit(node, *args, **kwargs)
            return result
        finally:
            self.repeating -= inside

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _filter(node.iter, "renewd_loop")
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [
            child
            if isinstance(child, nodes.TemplateData) and not self.repeating
            else _filter(child, "renewd_write")
            for child in node.nodes
        ]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.Tuple(list(node.nodes), "load", lineno=node.lineno)
        return _filter(parts, "renewd_concat")

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        if isinstance(node, nodes.Tuple) and node.ctx != "load":
            return node
        return _filter(node, "renewd_sized")

    visit_List = visit_Tuple = visit_Dict = _literal


def _filter(node: nodes.Node, name: str) -> nodes.Filter:
    """`node|name`, at the node's line (errors in the filter point there)."""
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


# -- the counting filters the rewritten templates call -------------------------------------------


@jinja2.pass_context
def _loop(_context: Context, items: Iterable[Any]) -> Iterable[Any]:
    return current().counted(items)


@jinja2.pass_context
def _write(_context: Context, value: Any) -> Any:
    """Count what a part writes. Called for every output: Budget.write, inlined."""
    budget = current()
    budget.written += len(value) if type(value) is str else measure(value)
    if budget.written > limits.MAX_OUTPUT:
        raise LimitError(f"writes more than {limits.MAX_OUTPUT:,} characters")
    return value


@jinja2.pass_context
def _concat(context: Context, parts: tuple[Any, ...]) -> str:
    texts = [soft_str(part) for part in parts]
    limit(sum(len(text) for text in texts), "'~'")
    return markup_join(texts) if context.eval_ctx.autoescape else str_join(texts)


@jinja2.pass_context
def _sized(_context: Context, value: Any) -> Any:
    return limited(value, "a literal")


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > limits.MAX_RANGE:
        raise LimitError(f"range() of {len(numbers):,} numbers; at most {limits.MAX_RANGE:,}")
    return numbers


# -- Jinja's own filters, with the size of what the amplifying ones would make worked out first --

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


def _text(value: Any) -> str:
    return str(soft_str(value))


def _indent_size(value: Any, args: Args, kwargs: Kwargs) -> int:
    text, width = _text(value), arg(args, kwargs, 0, "width", 4)
    unit = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    return len(text) + (text.count("\n") + 2) * unit


def _wordwrap_size(value: Any, args: Args, kwargs: Kwargs) -> int:
    text, width = _text(value), arg(args, kwargs, 0, "width", 79)
    wrap = arg(args, kwargs, 2, "wrapstring", None)
    lines = len(text) // max(width if isinstance(width, int) else 1, 1) + 1
    return len(text) + lines * (len(str(wrap)) if wrap else 1)


def _fill_size(count_name: str) -> Callable[[Any, Args, Kwargs], int]:
    def size(_value: Any, args: Args, kwargs: Kwargs) -> int:
        count, fill = arg(args, kwargs, 0, count_name, 0), arg(args, kwargs, 1, "fill_with", None)
        if not isinstance(count, int):
            return 0
        return count * (measure(fill) + 1) if fill is not None else 0

    return size


def _tojson_size(value: Any, args: Args, kwargs: Kwargs) -> int:
    indent = arg(args, kwargs, 0, "indent", None)
    if isinstance(indent, int) and indent > limits.MAX_JSON_INDENT:
        raise LimitError(f"tojson indent {indent}; at most {limits.MAX_JSON_INDENT}")
    return measure(value)


def _urlize_size(value: Any, args: Args, kwargs: Kwargs) -> int:
    extra = sum(measure(kwargs.get(k) or "") for k in ("target", "rel"))
    text = _text(value)
    return 3 * len(text) + (len(text) // 3 + 1) * (extra + 64)


ESTIMATES: dict[str, Callable[[Any, Args, Kwargs], int]] = {
    "center": lambda v, a, k: max(len(_text(v)), arg(a, k, 0, "width", 80) or 0),
    "indent": _indent_size,
    "wordwrap": _wordwrap_size,
    "batch": _fill_size("linecount"),
    "slice": _fill_size("slices"),
    "tojson": _tojson_size,
    "replace": lambda v, a, k: limits.replace_size(
        _text(v), arg(a, k, 0, "old", ""), arg(a, k, 1, "new", ""), arg(a, k, 2, "count", None)
    ),
    "format": lambda v, a, k: limits.printf_size(_text(v), k or a),
    "urlize": _urlize_size,
}


# Filters whose result is at most a few times their input, and that no chain of them can grow
# (escaping what is escaped changes nothing): left as they are, they are the hot path.
UNGUARDED = frozenset({"e", "escape", "safe", "default", "d", "length", "count"})


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, refusing what would be too large before it runs and checking what it made."""
    passes = getattr(func, "jinja_pass_arg", None) is not None
    estimate = ESTIMATES.get(name)
    what = f"the {name} filter"

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        value, rest = (args[1], args[2:]) if passes else (args[0], args[1:])
        if name == "join" and not isinstance(value, list | tuple | str):
            value = list(value)
            args = (args[0], value, *rest) if passes else (value, *rest)
        if name == "join":
            limit(limits.join_size(arg(rest, kwargs, 0, "d", ""), list(value)), what)
        elif estimate is not None:
            limit(estimate(value, rest, kwargs), what)
        return limited(func(*args, **kwargs), what)

    return guarded


# -- the environment -------------------------------------------------------------------------------


class LimitedLoader(jinja2.FileSystemLoader):
    """Template files found as Jinja finds them; one too large is refused before it is read."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)
        for root in self.searchpath:
            path = posixpath.join(root, *pieces)
            if os.path.isfile(path) and os.path.getsize(path) > limits.MAX_TEMPLATE_BYTES:
                with open(path, "rb") as file:
                    head = file.read(limits.MAX_TEMPLATE_BYTES)
                raise LimitError(
                    f"template larger than {limits.MAX_TEMPLATE_BYTES // 1024} KiB",
                    path,
                    head.count(b"\n") + 1,
                )
            if os.path.isfile(path):
                break
        return super().get_source(environment, template)


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox (no internals, no changing lists or dicts) with renewd's limits."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["range"] = _range
        self.globals.pop("lipsum", None)  # n paragraphs of filler, n unbounded
        self.filters = {
            name: func if name in UNGUARDED else _guarded(name, func)
            for name, func in self.filters.items()
        }
        self.filters.update(
            renewd_loop=_loop,
            renewd_write=_write,
            renewd_concat=_concat,
            renewd_sized=_sized,
        )

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        guarded: nodes.Template = _Guard().visit(tree)
        guarded.set_environment(self)
        return guarded

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits.check_binop(operator, left, right)
        return limited(super().call_binop(context, operator, left, right), f"'{operator}'")

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        if budget.depth >= limits.MAX_DEPTH:
            raise LimitError(f"calls nested more than {limits.MAX_DEPTH} deep")
        owner = getattr(getattr(obj, "__wrapped__", obj), "__self__", None)
        method = getattr(obj, "__name__", "")
        if owner is not None:
            limit(limits.method_size(owner, method, args, kwargs), f"{method}()")
            if method == "join" and isinstance(owner, str) and args:
                items = list(args[0])
                limit(limits.join_size(owner, items), "join()")
                args = (items, *args[1:])
        if isinstance(obj, LoopContext) and args:
            args = (budget.counted(args[0]), *args[1:])
        budget.depth += 1
        try:
            result = super().call(context, obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        return limited(result, f"{method or 'a call'}()")

    def get_template(self, *args: Any, **kwargs: Any) -> jinja2.Template:
        if limits.rendering():
            current().load()
        return super().get_template(*args, **kwargs)

    def select_template(self, *args: Any, **kwargs: Any) -> jinja2.Template:
        if limits.rendering():
            current().load()
        return super().select_template(*args, **kwargs)
