"""Rendering a part once per shape of its values, then filling in the rest: what a bulk run pays.

A day's messages of one template and locale differ mostly in values that a template only writes
out (`{{ mailbox }}`, `{{ fee|e }}`): the mailbox, the amounts, the dates. Values that steer it
(`{% if days_left == 1 %}`), or that it filters, calls, compares or assigns, take few values a
day. So a part is rendered in full, sandbox and limits included, once per combination of its
steering values, with a marker in place of each value it only writes; the output, split at the
markers, is a stencil, and each message fills in its own values, escaped where the marker came
out escaped. The output is the same text the full render gives.

Which values are only written is read from the parsed templates, the part's and every template
it extends, includes or imports: a name is only written when each of its uses, anywhere in them,
is the whole of an output (`{{ name }}`, `{{ name|e }}`) outside a macro, call, filter or set
block (whose output something may still change). A part whose templates cannot be read this way
(a template named by a variable, `self` or `super()` used other than as an output) renders in
full every time, as does a value that cannot be a key (a list) and a stencil that would fill to
more than a part may write.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.parser import Parser
from markupsafe import escape

from renewd.delivery import limits

MAX_STENCILS = 4096  # per renderer: beyond it, parts render in full (memory stays bounded)
_TOKEN = secrets.token_hex(8)  # in every marker: no template's own text is taken for one
_MARK = re.compile(f"\x00(&|&amp;){_TOKEN}:([0-9]+)\x00")  # a marker as written, or escaped once
_BLOCKED = (nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock)
_LOADS = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
_ESCAPES = ("e", "escape")
PLAIN = (str, int, float, bool, type(None))  # values a stencil fills in


@dataclass(frozen=True)
class Shape:
    """What a part's templates do with names: those only written, and the others they use."""

    written: tuple[str, ...]
    steering: tuple[str, ...]

    def key(self, name: str, values: dict[str, Any]) -> tuple[Any, ...] | None:
        """The part, its steering values (typed: True is not 1) and the types of those written
        (absent: None); None if a value cannot be part of a key."""
        key: list[Any] = [name]
        for n in self.steering:
            if n in values:
                value = values[n]
                if type(value) is str and "\x00" in value:
                    return None  # written out, it could pass for a marker
                key += (n, type(value), value)
        for n in self.written:
            kind = type(values[n]) if n in values else None
            if kind is not None and kind not in PLAIN:
                return None  # written as str() or escape() gives it: a Markup would not be
            key.append(kind)
        frozen = tuple(key)
        try:
            hash(frozen)
        except TypeError:
            return None
        return frozen


@dataclass(frozen=True)
class Stencil:
    """A part's output with holes: texts[0], hole 0, texts[1], ... texts[-1]."""

    texts: tuple[str, ...]
    holes: tuple[tuple[str, bool], ...]  # the name, and whether it came out escaped

    def fill(self, values: dict[str, Any]) -> str | None:
        texts = self.texts
        out = [texts[0]]
        for (name, escaped), text in zip(self.holes, texts[1:], strict=True):
            value = values[name]
            out.append(str(escape(value)) if escaped else str(value))
            out.append(text)
        filled = "".join(out)
        return filled if len(filled) <= limits.MAX_OUTPUT else None


class Stencils:
    """The stencils of one renderer's parts, made as they are first needed."""

    def __init__(self, env: jinja2.Environment) -> None:
        self.env = env
        self.shapes: dict[str, Shape | None] = {}
        self.made: dict[tuple[Any, ...], Stencil | None] = {}
        self.limit = MAX_STENCILS  # 0: every part renders in full

    def render(
        self, name: str, values: dict[str, Any], full: Callable[[dict[str, Any]], str]
    ) -> str | None:
        """The part's output before stripping, or None: render it in full instead. `full`
        renders the part (sandboxed, limited) with the values given."""
        if name not in self.shapes:
            self.shapes[name] = shape_of(self.env, name)
        shape = self.shapes[name]
        key = shape.key(name, values) if shape is not None else None
        if shape is None or key is None:
            return None
        if key not in self.made:
            if len(self.made) >= self.limit:
                return None
            self.made[key] = _stencil(shape, values, full)
        stencil = self.made[key]
        return stencil.fill(values) if stencil is not None else None


def _stencil(
    shape: Shape, values: dict[str, Any], full: Callable[[dict[str, Any]], str]
) -> Stencil | None:
    """Render once with a marker for each written value; None if the output is not made of the
    markers as written or escaped once (or the render fails: the full one says why)."""
    marked = dict(values)
    names = [n for n in shape.written if n in values]
    for number, name in enumerate(names):
        marked[name] = f"\x00&{_TOKEN}:{number}\x00"
    try:
        output = full(marked)
    except Exception:  # the full render, with the real values, reports it
        return None
    pieces = _MARK.split(output)
    texts = pieces[0::3]
    holes = [
        (names[int(number)], form != "&")
        for form, number in zip(pieces[1::3], pieces[2::3], strict=True)
    ]
    if any("\x00" in text for text in texts):
        return None
    return Stencil(tuple(texts), tuple(holes))


def shape_of(env: jinja2.Environment, name: str) -> Shape | None:
    """The names a part's templates only write, and the others; None if they cannot be read."""
    uses: dict[str, bool] = {}  # name: only written so far
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            source, filename, _ = env.loader.get_source(env, current)  # type: ignore[union-attr]
            tree = Parser(env, source, current, filename).parse()
        except Exception:  # the full render reports what is wrong
            return None
        loads = _read(tree, uses)
        if loads is None:
            return None
        todo.extend(loads)
    written = tuple(sorted(n for n, only in uses.items() if only))
    steering = tuple(sorted(n for n, only in uses.items() if not only))
    return Shape(written, steering)


def _read(tree: nodes.Template, uses: dict[str, bool]) -> list[str] | None:
    """Note each name's uses in one parsed template; the templates it loads, or None."""
    reading = _Reading()
    if not reading.visit(tree, blocked=False):
        return None
    for name in reading.names:
        only = id(name) in reading.written
        if name.name in ("self", "super") and not only:
            return None
        uses[name.name] = uses.get(name.name, True) and only
    return reading.loads


class _Reading:
    """One walk over a parsed template: its names, which of them are a whole output outside a
    block that could change it, and the templates it loads (False: one is not a plain name)."""

    def __init__(self) -> None:
        self.written: set[int] = set()  # ids of the names that are the whole of an output
        self.loads: list[str] = []
        self.names: list[nodes.Name] = []

    def visit(self, node: nodes.Node, blocked: bool) -> bool:
        if isinstance(node, nodes.Name):
            self.names.append(node)
        elif isinstance(node, nodes.Output) and not blocked:
            self.written.update(id(name) for name in map(_written, node.nodes) if name)
        elif isinstance(node, _LOADS):
            template = node.template
            if blocked or not isinstance(template, nodes.Const):
                return False
            if not isinstance(template.value, str):
                return False
            self.loads.append(template.value)
        inside = blocked or isinstance(node, _BLOCKED)
        return all(self.visit(child, inside) for child in node.iter_child_nodes())


def _written(node: nodes.Node) -> nodes.Name | None:
    """The name an output writes whole (`{{ name }}`, `{{ name|e }}`), else None."""
    if isinstance(node, nodes.Name):
        return node
    if isinstance(node, nodes.Filter) and _escape_of_name(node):
        return node.node  # type: ignore[return-value]  # a Name: _escape_of_name checked it
    return None


def _escape_of_name(node: nodes.Filter) -> bool:
    return (
        node.name in _ESCAPES
        and isinstance(node.node, nodes.Name)
        and not node.args
        and not node.kwargs
        and node.dyn_args is None
        and node.dyn_kwargs is None
    )
