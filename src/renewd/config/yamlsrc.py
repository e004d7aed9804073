"""Safe YAML loading that remembers the line of every key and list item, for `file:line` errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what PyYAML counts as a new line


class _Loader(yaml.SafeLoader):
    """SafeLoader whose containers carry line numbers; it constructs only the safe tags.

    Every failure becomes a MarkedYAMLError with a line: nesting too deep to walk, and values
    PyYAML's own constructors choke on (`2026-02-30`, `!!int abc`, `!!map [a]`).
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                message = f"nested more than {MAX_DEPTH} levels deep"
                raise yaml.composer.ComposerError(None, None, message, mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
            kind = str(node.tag).rsplit(":", 1)[-1]
            reason = " ".join(str(exc).split())
            message = f"cannot read this value as {kind} ({reason}); quote it if it is text"
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
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UnusableFile([Problem(str(path), 0, f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise UnusableFile([Problem(str(path), 0, "not UTF-8 text")]) from exc
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
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
