"""The `lifecycle:` section: the business rules in their own words, compiled to generic rules.

Each section becomes one rule with a fixed id (the section name with dashes) in the group
`lifecycle`, so dry-run shows one vocabulary whichever level a rule was written at. The
priorities encode "most specific wins" when several are due on the same day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from renewd.config.yamlsrc import LocatedMap, Reader
from renewd.core.errors import suggest
from renewd.policy.conditions import All, AnyOf, Cmp, Cond
from renewd.policy.model import CHANNELS, Draft

GROUP = "lifecycle"


@dataclass(frozen=True)
class Section:
    priority: int
    days_key: str  # "days_before", "days_after", or "" when the day is fixed by another section
    many_days: bool
    conditions: Callable[[list[int], LocatedMap], list[Cond]]
    deduct: bool = False
    delete: bool = False
    grouped: bool = True


def _paid_open() -> list[Cond]:
    return [Cmp("is_paid", "eq", True), Cmp("renewed", "eq", False)]


def _days(fact: str, days: list[int]) -> Cond:
    return (
        Cmp(fact, "eq", days[0])
        if len(days) == 1
        else AnyOf(tuple(Cmp(fact, "eq", d) for d in days))
    )


def _auto_renew_day(sections: LocatedMap) -> list[int]:
    auto = sections.get("auto_renew")
    day = auto.get("days_before", 3) if isinstance(auto, dict) else 3
    return [day] if isinstance(day, int) else [3]


SECTIONS: dict[str, Section] = {
    "deletion": Section(
        70,
        "days_after",
        False,
        lambda d, _: [*_paid_open(), _days("days_since_expiry", d)],
        delete=True,
    ),
    "auto_renew": Section(
        60,
        "days_before",
        False,
        lambda d, _: [
            *_paid_open(),
            Cmp("auto_renew", "eq", True),
            Cmp("balance_covers_fee", "eq", True),
            _days("days_to_expiry", d),
        ],
        deduct=True,
    ),
    "auto_renew_failed": Section(
        50,
        "",
        False,
        lambda _, s: [
            *_paid_open(),
            Cmp("auto_renew", "eq", True),
            Cmp("balance_covers_fee", "eq", False),
            _days("days_to_expiry", _auto_renew_day(s)),
        ],
    ),
    "low_balance_warning": Section(
        40,
        "days_before",
        True,
        lambda d, _: [
            *_paid_open(),
            Cmp("auto_renew", "eq", True),
            Cmp("balance_covers_fee", "eq", False),
            _days("days_to_expiry", d),
        ],
    ),
    "expired": Section(
        30, "", False, lambda _, __: [*_paid_open(), Cmp("days_since_expiry", "eq", 0)]
    ),
    "grace_reminder": Section(
        20, "days_after", True, lambda d, _: [*_paid_open(), _days("days_since_expiry", d)]
    ),
    "renewal_reminder": Section(
        10, "days_before", True, lambda d, _: [*_paid_open(), _days("days_to_expiry", d)]
    ),
    "domain_expiry": Section(
        0,
        "days_before",
        True,
        lambda d, _: [Cmp("domain_via_provider", "eq", True), _days("domain_days_to_expiry", d)],
        grouped=False,
    ),
}


def read(r: Reader, value: Any, line: int) -> list[Draft]:
    sections = r.mapping(value, line, "lifecycle")
    if sections is None:
        return []
    r.known_keys(sections, SECTIONS, "lifecycle")
    drafts = []
    for name, section in SECTIONS.items():
        if name in sections:
            draft = _read_section(r, sections, name, section)
            if draft is not None:
                drafts.append(draft)
    _check_grace(r, sections)
    return drafts


def _read_section(r: Reader, sections: LocatedMap, name: str, section: Section) -> Draft | None:
    line = sections.lines[name]
    node = r.mapping(sections[name], line, f"lifecycle.{name}")
    if node is None:
        return None
    keys = ["notify", "template", *([section.days_key] if section.days_key else [])]
    r.known_keys(node, keys, f"lifecycle.{name}")
    days: list[int] = []
    if section.days_key:
        days = _read_days(r, node, section, name, line)
        if not days:
            return None
    rule_id = name.replace("_", "-")
    template = node.get("template", rule_id)
    if not isinstance(template, str):
        r.problem(node.lines["template"], "template must be a template name")
    channels = read_channels(r, node["notify"], node.lines["notify"]) if "notify" in node else ()
    if channels is None:
        return None
    if not channels and not (section.deduct or section.delete):
        r.problem(line, f"lifecycle.{name} needs 'notify' with at least one channel")
        return None
    return Draft(
        id=rule_id,
        when=All(tuple(section.conditions(days, sections))),
        source=r.path,
        line=line,
        notify=channels,
        template=str(template),
        deduct=section.deduct,
        delete=section.delete,
        group=GROUP if section.grouped else "",
        priority=section.priority,
    )


def _read_days(r: Reader, node: LocatedMap, section: Section, name: str, line: int) -> list[int]:
    key = section.days_key
    if key not in node:
        r.problem(line, f"lifecycle.{name} needs {key!r}")
        return []
    value = node[key]
    items = value if isinstance(value, list) and section.many_days else [value]
    lowest = 1 if key == "days_after" else 0
    if not items or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= lowest for d in items
    ):
        shape = "a list of whole numbers" if section.many_days else "a whole number"
        r.problem(node.lines[key], f"lifecycle.{name}.{key} must be {shape} >= {lowest}")
        return []
    return sorted(set(items), reverse=key == "days_before")


def _check_grace(r: Reader, sections: LocatedMap) -> None:
    grace, deletion = sections.get("grace_reminder"), sections.get("deletion")
    if not (isinstance(grace, LocatedMap) and isinstance(deletion, LocatedMap)):
        return
    after, last = grace.get("days_after"), deletion.get("days_after")
    if (
        isinstance(after, list)
        and isinstance(last, int)
        and any(isinstance(d, int) and d >= last for d in after)
    ):
        r.problem(
            grace.lines["days_after"], f"grace reminders must come before deletion (day {last})"
        )


def read_channels(r: Reader, value: Any, line: int) -> tuple[str, ...] | None:
    """The channels named, or None (after reporting why) when they are not valid."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        r.problem(line, "notify must be a list of channels (email, sms)")
        return None
    for item in items:
        if item not in CHANNELS:
            r.problem(line, f"unknown channel {item!r}{suggest(str(item), CHANNELS)}")
            return None
    return tuple(dict.fromkeys(items))
