"""Policy files -> a validated Policy, with every problem reported as `file:line: message`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from renewd.config.yamlsrc import LocatedList, LocatedMap, Reader, load_yaml
from renewd.core.errors import Problem, ProblemsError
from renewd.core.model import Anchor
from renewd.policy import lifecycle
from renewd.policy.conditions import All, is_bounded, nnf, window
from renewd.policy.model import Draft, Policy, Rule
from renewd.policy.when import read_condition

TOP_KEYS = ("timezone", "editions", "lifecycle", "rules")
EDITION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RULE_KEYS = ("id", "description", "when", "then", "group", "priority")
THEN_KEYS = ("notify", "template", "deduct", "delete")
RULE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")  # \Z: `$` would let "id\n" through


@dataclass
class _Settings:
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)


def policy_files(rules: Path) -> list[Path]:
    if rules.is_dir():
        return sorted(p for p in rules.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [rules]


def load_policy(paths: Iterable[Path]) -> Policy:
    """Load and validate every policy file; raise ProblemsError listing every problem found."""
    paths = list(paths)
    problems: list[Problem] = []
    settings = _Settings()
    drafts: list[Draft] = []
    digest = hashlib.sha256()
    if not paths:
        raise ProblemsError([Problem("rules", 0, "no policy files found")])
    for path in paths:
        try:
            document = load_yaml(path)
        except ProblemsError as exc:
            problems.extend(exc.problems)
            continue
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        reader = Reader(path)
        drafts.extend(_read_file(reader, document, settings))
        problems.extend(reader.problems)
    rules, rule_problems = _finish(drafts)
    problems.extend(rule_problems)
    for key in () if problems else ("timezone", "editions"):
        if key not in settings.values:
            problems.append(Problem(str(paths[0]), 0, f"no policy file sets {key!r}"))
    if problems:
        raise ProblemsError(problems)
    paid, free = settings.values["editions"]
    return Policy(
        timezone=settings.values["timezone"],
        paid_editions=paid,
        free_editions=free,
        rules=tuple(rules),
        digest=digest.hexdigest()[:16],
        sources=tuple(str(p) for p in paths),
    )


def _read_file(r: Reader, document: Any, settings: _Settings) -> list[Draft]:
    if document is None:
        r.problem(0, "empty policy file")
        return []
    top = r.mapping(document, 1, "a policy file")
    if top is None:
        return []
    r.known_keys(top, TOP_KEYS, "the policy file")
    for key in ("timezone", "editions"):
        if key in top:
            _read_setting(r, top, key, settings)
    drafts: list[Draft] = []
    if "lifecycle" in top:
        drafts.extend(lifecycle.read(r, top["lifecycle"], top.lines["lifecycle"]))
    if "rules" in top:
        drafts.extend(_read_rules(r, top["rules"], top.lines["rules"]))
    return drafts


def _read_setting(r: Reader, top: LocatedMap, key: str, settings: _Settings) -> None:
    line = top.lines[key]
    if key in settings.values:
        r.problem(line, f"{key!r} is already set in {settings.where[key]}")
        return
    value = _timezone(r, top[key], line) if key == "timezone" else _editions(r, top[key], line)
    if value is not None:
        settings.values[key] = value
        settings.where[key] = f"{r.path}:{line}"


def _timezone(r: Reader, value: Any, line: int) -> str | None:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        r.problem(line, f"unknown timezone {value!r} (use an IANA name such as 'Asia/Shanghai')")
        return None
    return str(value)


def _editions(r: Reader, value: Any, line: int) -> tuple[frozenset[str], frozenset[str]] | None:
    node = r.mapping(value, line, "editions")
    if node is None:
        return None
    r.known_keys(node, ("paid", "free"), "editions")
    names: dict[str, frozenset[str]] = {}
    for key in ("paid", "free"):
        items = node.get(key)
        if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
            r.problem(node.lines.get(key, node.line), f"editions.{key} must be a list of names")
            return None
        odd = [i for i in items if not EDITION.fullmatch(i)]
        if odd:  # a snapshot field holds the name as it is: no comma, quote or space in it
            where = node.lines.get(key, node.line)
            r.problem(where, f"editions.{key}: {odd[0]!r} is not a name (letters, digits, - _ .)")
            return None
        names[key] = frozenset(items)
    both = names["paid"] & names["free"]
    if both:
        r.problem(node.line, f"editions listed as both paid and free: {', '.join(sorted(both))}")
        return None
    return names["paid"], names["free"]


def _read_rules(r: Reader, value: Any, line: int) -> list[Draft]:
    if not isinstance(value, LocatedList):
        r.problem(line, "rules must be a list")
        return []
    drafts = []
    for item, item_line in zip(value, value.lines, strict=True):
        node = r.mapping(item, item_line, "a rule")
        if node is not None:
            draft = _read_rule(r, node)
            if draft is not None:
                drafts.append(draft)
    return drafts


def _read_rule(r: Reader, node: LocatedMap) -> Draft | None:
    r.known_keys(node, RULE_KEYS, "a rule")
    rule_id = node.get("id")
    if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
        r.problem(
            node.lines.get("id", node.line),
            "a rule needs an 'id' of lowercase letters, digits and '-'",
        )
        return None
    for key in ("when", "then"):
        if key not in node:
            r.problem(node.line, f"rule {rule_id!r} has no {key!r}")
            return None
    when = read_condition(r, node["when"], node.lines["when"])
    draft = Draft(id=rule_id, when=when or All(()), source=r.path, line=node.line)
    then = r.mapping(node["then"], node.lines["then"], f"'then' of rule {rule_id!r}")
    if then is not None:
        _read_then(r, then, draft)
    group = node.get("group", "")
    priority = node.get("priority", 0)
    if not isinstance(group, str):
        r.problem(node.lines["group"], "group must be a name")
    elif not isinstance(priority, int) or isinstance(priority, bool) or priority < 0:
        r.problem(node.lines["priority"], "priority must be a whole number >= 0")
    else:
        draft.group, draft.priority = group, priority
    return draft if when is not None else None


def _read_then(r: Reader, then: LocatedMap, draft: Draft) -> None:
    r.known_keys(then, THEN_KEYS, "'then'")
    if "notify" in then:
        channels = lifecycle.read_channels(r, then["notify"], then.lines["notify"])
        if channels is None:
            return
        draft.notify = channels
    for key in ("deduct", "delete"):
        if key in then:
            if isinstance(then[key], bool):
                setattr(draft, key, then[key])
            else:
                r.problem(then.lines[key], f"{key} must be true or false")
    template = then.get("template", draft.id)
    if isinstance(template, str) and RULE_ID.match(template):
        draft.template = template
    else:
        r.problem(then.lines.get("template", then.line), "template must be a template name")
    if not (draft.notify or draft.deduct or draft.delete):
        r.problem(
            then.line, f"rule {draft.id!r} does nothing: 'then' needs notify, deduct or delete"
        )


def _finish(drafts: list[Draft]) -> tuple[list[Rule], list[Problem]]:
    """Work out each rule's anchor and steps; check ids and group priorities across files."""
    problems: list[Problem] = []
    rules: list[Rule] = []
    seen: dict[str, Draft] = {}
    for draft in drafts:
        where = Problem(draft.source, draft.line, "")
        if draft.id in seen:
            first = seen[draft.id]
            problems.append(
                _at(where, f"rule id {draft.id!r} is already used at {first.source}:{first.line}")
            )
            continue
        seen[draft.id] = draft
        rule = _anchor(draft, where, problems)
        if rule is not None:
            rules.append(rule)
    problems.extend(_priority_clashes(rules))
    problems.extend(lifecycle.check_retries(rules))
    return rules, problems


def _anchor(draft: Draft, where: Problem, problems: list[Problem]) -> Rule | None:
    when = nnf(draft.when)
    bounded = {a: s for a in Anchor if is_bounded(s := window(when, a))}
    if len(bounded) != 1:
        message = (
            "limits both the mailbox's and the domain's expiry days; use one"
            if bounded
            else "can match on any day: limit days_to_expiry, days_since_expiry or "
            "domain_days_to_expiry to certain days (eq, in or between)"
        )
        problems.append(_at(where, f"rule {draft.id!r} {message}"))
        return None
    ((anchor, steps),) = bounded.items()
    if not steps:
        problems.append(
            _at(where, f"rule {draft.id!r} can never match: its day conditions contradict")
        )
        return None
    return Rule(
        id=draft.id,
        when=when,
        anchor=anchor,
        steps=steps,
        notify=draft.notify,
        template=draft.template,
        deduct=draft.deduct,
        delete=draft.delete,
        group=draft.group,
        priority=draft.priority,
        retry=draft.retry,
        source=draft.source,
        line=draft.line,
    )


def _priority_clashes(rules: list[Rule]) -> list[Problem]:
    problems = []
    taken: dict[tuple[str, int], Rule] = {}
    for rule in rules:
        if not rule.group:
            continue
        other = taken.setdefault((rule.group, rule.priority), rule)
        if other is not rule:
            problems.append(
                Problem(
                    rule.source,
                    rule.line,
                    (
                        f"rule {rule.id!r} has the same priority ({rule.priority}) as {other.id!r} "
                        f"in group "
                        f"{rule.group!r}; give each rule of a group its own priority"
                    ),
                )
            )
    return problems


def _at(where: Problem, message: str) -> Problem:
    return Problem(where.path, where.line, message)
