"""The `lifecycle:` section: the business rules in their own words, compiled to generic rules.

Each section becomes one rule with a fixed id (the section name with dashes) in the group
`lifecycle`, so dry-run shows one vocabulary whichever level a rule was written at. The
priorities encode "most specific wins" when several are due on the same day.

`auto_renew_retry` is the one section the reference rules do not have (the shipped policy leaves
it out): it charges again, on the days it names, for a cycle whose auto-renewal did not happen,
once the balance covers the fee.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from renewd.config.yamlsrc import LocatedMap, Reader
from renewd.core.errors import Problem, suggest
from renewd.core.model import Anchor
from renewd.policy.conditions import All, AnyOf, Cmp, Cond
from renewd.policy.model import CHANNELS, Draft, Rule

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
    retry: bool = False  # `days_before` is allowed beside `days_after`; days are then offsets


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
    "auto_renew_retry": Section(
        55,
        "days_after",
        True,
        lambda offsets, _: [
            *_paid_open(),
            Cmp("auto_renew", "eq", True),
            Cmp("balance_covers_fee", "eq", True),
            _days("days_since_expiry", offsets),
        ],
        deduct=True,
        retry=True,
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
    keys += ["days_before"] if section.retry else []
    r.known_keys(node, keys, f"lifecycle.{name}")
    days: list[int] = []
    if section.retry:
        days = _read_offsets(r, node, section, name, line)
        if not days:
            return None
    elif section.days_key:
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
        retry=section.retry,
    )


def _read_offsets(r: Reader, node: LocatedMap, section: Section, name: str, line: int) -> list[int]:
    """A retry's days as offsets from expiry: `days_before` (0 is the expiry day) count down,
    `days_after` count up; either or both."""
    if "days_after" not in node and "days_before" not in node:
        r.problem(line, f"lifecycle.{name} needs 'days_after' or 'days_before'")
        return []
    offsets: list[int] = []
    for key, sign in (("days_before", -1), ("days_after", 1)):
        if key in node:
            days = _read_days(r, node, replace(section, days_key=key), name, line)
            if not days:
                return []
            offsets += [sign * d for d in days]
    return sorted(set(offsets))


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


def check_retries(rules: list[Rule]) -> list[Problem]:
    """A retry tries again what an auto-renewal failed to do, before the mailbox is deleted: its
    days must come after the first attempt and before the deletion step, whichever files set
    them."""
    expiry = [r for r in rules if r.anchor is Anchor.EXPIRY]
    firsts = [-min(r.steps) for r in expiry if r.deduct and not r.retry and min(r.steps) < 0]
    deletions = [min(r.steps) for r in expiry if r.delete]
    problems = []
    for rule in (r for r in expiry if r.retry):
        where = "lifecycle.auto_renew_retry"
        if not firsts:
            problems.append(
                Problem(
                    rule.source,
                    rule.line,
                    f"{where} has no auto-renewal to retry: no rule deducts before expiry "
                    "(add lifecycle.auto_renew)",
                )
            )
            continue
        first, last = max(firsts), min(deletions, default=None)
        for step in sorted(rule.steps):
            why = ""
            if step <= -first:
                why = f"is on or before the auto-renewal ({_day(-first)}); a retry comes after it"
            elif last is not None and step >= last:
                why = f"is on or after deletion ({_day(last)}); a retry must come before it"
            if why:
                problems.append(Problem(rule.source, rule.line, f"{where}: {_day(step)} {why}"))
    return problems


def _day(step: int) -> str:
    if step == 0:
        return "the expiry day"
    count = f"{abs(step)} day{'s' if abs(step) != 1 else ''}"
    return f"{count} before expiry" if step < 0 else f"{count} after expiry"


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
