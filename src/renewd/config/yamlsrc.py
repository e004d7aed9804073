"""Safe YAML loading that remembers the line of every key and list item, for `file:line` errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import yaml

from renewd.core.errors import Problem, ProblemsError, UnusableFile, suggest


class LocatedMap(dict[str, Any]):
    """A YAML mapping that knows its own line and the line of each key."""

    line: int
    lines: dict[str, int]


class LocatedList(list[Any]):
    """A YAML sequence that knows its own line and the line of each item."""

    line: int
    lines: list[int]


MAX_DEPTH = 100  # far beyond any real policy, far below Python's recursion limit
MAX_NODES = 20_000  # values in one file, every alias expanded; the shipped policy has ~150
MAX_BYTES = 1 << 20  # one policy or config file
_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what PyYAML counts as a new line


class _Loader(yaml.SafeLoader):
    """SafeLoader whose containers carry line numbers; it constructs only the safe tags.

    Every failure becomes a MarkedYAMLError with a line: nesting too deep to walk, a document
    that would hold more than MAX_NODES values once its aliases are expanded (`&a [*b, *b, ...]`
    nested a few levels is billions), and values PyYAML's own constructors choke on
    (`2026-02-30`, `!!int abc`, `!!map [a]`). Values are counted as they are read, so a file
    past the limit is refused at that point, not after it has all been read.
    """

    _depth = 0
    _reached = 0
    _count = 0

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, tuple[int, int]] = {}  # anchored node -> (values, levels)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if self._depth > MAX_DEPTH:
                self._refuse(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
            if isinstance(event, yaml.AliasEvent):
                node = super().compose_node(parent, index)
                self._expand(node, event.start_mark)
                return node
            count, reached = self._count, self._reached
            self._reached = self._depth
            node = super().compose_node(parent, index)
            self._count += 1
            if self._count > MAX_NODES:
                self._refuse(f"more than {MAX_NODES:,} values in one file", event.start_mark)
            if event.anchor is not None and node is not None:
                self._sizes[id(node)] = (self._count - count, self._reached - self._depth + 1)
            self._reached = max(reached, self._reached)
            return node
        finally:
            self._depth -= 1

    def _expand(self, node: yaml.Node | None, mark: Any) -> None:
        """An alias stands for a copy of its anchor's values: count them, and their depth."""
        size = self._sizes.get(id(node))
        if size is None:
            self._refuse("an alias inside its own anchor", mark)
        values, levels = size
        self._count += values
        self._reached = max(self._reached, self._depth + levels - 1)
        if self._count > MAX_NODES:
            self._refuse(
                f"more than {MAX_NODES:,} values in one file once its aliases are expanded", mark
            )
        if self._reached > MAX_DEPTH:
            message = f"nested more than {MAX_DEPTH} levels deep once its aliases are expanded"
            self._refuse(message, mark)

    @staticmethod
    def _refuse(message: str, mark: Any) -> NoReturn:
        raise yaml.composer.ComposerError(None, None, message, mark)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
            kind = str(node.tag).rsplit(":", 1)[-1]
            # a date's reason says what is wrong with it; others would repeat the value itself,
            # which may be a secret on the wrong line
            reason = f" ({' '.join(str(exc).split())})" if kind == "timestamp" else ""
            message = f"cannot read this value as {kind}{reason}; quote it if it is text"
            raise yaml.constructor.ConstructorError(None, None, message, node.start_mark) from exc


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LocatedMap:
    loader.flatten_mapping(node)
    result = LocatedMap()
    result.line = _line(node)
    result.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"keys must be strings, got {key!r}", key_node.start_mark
            )
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = _line(key_node)
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LocatedList:
    result = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = _line(node)
    result.lines = [_line(child) for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path) -> Any:
    """Parse one YAML file; syntax errors become a `path:line: message` problem."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UnusableFile([Problem(str(path), 0, f"cannot read: {exc.strerror}")]) from exc
    if len(data) > MAX_BYTES:
        line = data.count(b"\n", 0, MAX_BYTES) + 1
        message = f"larger than {MAX_BYTES >> 20} MiB: not a policy or config file renewd reads"
        raise UnusableFile([Problem(str(path), line, message)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnusableFile([Problem(str(path), 0, "not UTF-8 text")]) from exc
    try:
        loader = _Loader(text)  # its reader refuses characters YAML forbids at once
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except (ValueError, OverflowError) as exc:  # the scanner's chr() of an escape: \U00110000
        line = loader.get_mark().line + 1
        message = "an escape sequence names no Unicode character (beyond U+10FFFF)"
        raise ProblemsError([Problem(str(path), line, message)]) from exc
    except yaml.reader.ReaderError as exc:  # a character YAML forbids, such as a control code
        line = len(_BREAKS.findall(text, 0, exc.position)) + 1
        message = str(exc).splitlines()[0]
        raise ProblemsError([Problem(str(path), line, message)]) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        raise ProblemsError([Problem(str(path), line, message)]) from exc
    except yaml.YAMLError as exc:
        raise ProblemsError([Problem(str(path), 0, str(exc))]) from exc


class Reader:
    """Collects problems while walking one YAML document, so `check` reports all of them at once."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.problems: list[Problem] = []

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def mapping(self, value: Any, line: int, what: str) -> LocatedMap | None:
        if isinstance(value, LocatedMap):
            return value
        self.problem(line, f"{what} must be a mapping")
        return None

    def known_keys(self, node: LocatedMap, allowed: Iterable[str], what: str) -> None:
        allowed = list(allowed)
        for key in node:
            if key not in allowed:
                self.problem(
                    node.lines[key], f"unknown key {key!r} in {what}{suggest(key, allowed)}"
                )

    def raise_if_any(self) -> None:
        if self.problems:
            raise ProblemsError(self.problems)
