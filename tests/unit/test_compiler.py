"""The policy compiler: YAML in, behaviour out, decided by durable_rules itself."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from renewd.core.history import MemoryHistory
from renewd.core.model import Kind, Mailbox
from renewd.plan.evaluate import Evaluator
from renewd.policy.loader import load_policy

from support import TODAY, mailbox

HEADER = """\
timezone: Asia/Shanghai
editions: {free: [free], paid: [basic, standard, enterprise]}
"""


def compile_rules(tmp_path: Path, rules: str) -> Evaluator:
    path = tmp_path / "rules.yaml"
    path.write_text(
        HEADER + "rules:\n" + textwrap.indent(textwrap.dedent(rules), "  "), encoding="utf-8"
    )
    return Evaluator(load_policy([path]))


def fired(evaluator: Evaluator, box: Mailbox) -> list[str]:
    """Rule ids that would act on TODAY, in plan order (deduplicated across channels)."""
    plan = evaluator.plan([box], evaluator.window(TODAY), MemoryHistory())
    return list(dict.fromkeys(d.rule for d in plan.actions))


CONDITIONS = [
    # (when, mailbox that matches, mailbox that does not)
    ("{days_to_expiry: 10}", mailbox(10), mailbox(11)),
    ("{days_since_expiry: 2}", mailbox(-2), mailbox(2)),
    ("{days_to_expiry: {in: [5, 9]}}", mailbox(9), mailbox(7)),
    (
        "{days_to_expiry: {between: [5, 9]}, edition: enterprise}",
        mailbox(5, edition="enterprise"),
        mailbox(5),
    ),
    (
        "{days_to_expiry: {between: [5, 9]}, edition: {not_in: [basic, standard]}}",
        mailbox(9, edition="enterprise"),
        mailbox(9),
    ),
    (
        "{days_to_expiry: 5, balance: {lt: {field: renewal_fee}}}",
        mailbox(5, balance="119.99"),
        mailbox(5, balance="120.00"),
    ),
    (
        "{days_to_expiry: 5, balance: {ge: 100.10}}",
        mailbox(5, balance="100.10"),
        mailbox(5, balance="100.09"),
    ),
    ("{days_to_expiry: 5, renewal_fee: {gt: 0}}", mailbox(5), mailbox(5, renewal_fee="0")),
    ("{days_to_expiry: 5, not: {auto_renew: true}}", mailbox(5), mailbox(5, auto_renew=True)),
    (
        "{all: [{days_to_expiry: {le: 6}}, {days_to_expiry: {ge: 4}}], any: [{locale: en}, {has_phone: false}]}",
        mailbox(4, phone=""),
        mailbox(4),
    ),
    (
        "{not: {any: [{days_to_expiry: {lt: 3}}, {days_to_expiry: {gt: 5}}]}, is_paid: true}",
        mailbox(3),
        mailbox(3, edition="free"),
    ),
    (
        "[{days_to_expiry: 5}, {renewal_months: {ne: 12}}]",
        mailbox(5, renewal_months=24),
        mailbox(5),
    ),
    ("{days_to_expiry: 5, balance_covers_fee: true}", mailbox(5, balance="500"), mailbox(5)),
]


@pytest.mark.parametrize(("when", "hit", "miss"), CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_condition(tmp_path: Path, when: str, hit: Mailbox, miss: Mailbox) -> None:
    evaluator = compile_rules(
        tmp_path, f"- id: probe\n  when: {when}\n  then: {{notify: [email]}}\n"
    )
    assert fired(evaluator, hit) == ["probe"]
    assert fired(evaluator, miss) == []


def test_missing_domain_date_never_matches_even_negated(tmp_path: Path) -> None:
    evaluator = compile_rules(
        tmp_path,
        """\
        - id: near
          when: {domain_days_to_expiry: {between: [0, 9]}}
          then: {notify: [email]}
        - id: not-near
          when: {domain_days_to_expiry: {between: [10, 20]}, not: {domain_days_to_expiry: 15}}
          then: {notify: [email]}
        """,
    )
    assert fired(evaluator, mailbox(100)) == []
    assert fired(evaluator, mailbox(100, domain_expires_on=TODAY + timedelta(days=12))) == [
        "not-near"
    ]
    assert fired(evaluator, mailbox(100, domain_expires_on=TODAY + timedelta(days=15))) == []


def test_group_lets_only_the_highest_priority_act(tmp_path: Path) -> None:
    evaluator = compile_rules(
        tmp_path,
        """\
        - id: broad
          group: g
          priority: 1
          when: {days_to_expiry: {between: [1, 10]}}
          then: {notify: [email, sms]}
        - id: narrow
          group: g
          priority: 5
          when: {days_to_expiry: 5}
          then: {notify: [email]}
        - id: independent
          when: {days_to_expiry: 5}
          then: {notify: [sms], template: renewal-reminder}
        """,
    )
    plan = evaluator.plan([mailbox(5)], evaluator.window(TODAY), MemoryHistory())
    assert [(d.rule, d.channel) for d in plan.actions] == [
        ("narrow", "email"),
        ("independent", "sms"),
    ]
    assert {(d.rule, d.superseded_by) for d in plan.superseded} == {("broad", "narrow")}
    assert fired(evaluator, mailbox(6)) == ["broad"]


def test_actions_come_in_the_order_they_happen(tmp_path: Path) -> None:
    evaluator = compile_rules(
        tmp_path,
        "- id: all-of-it\n  when: {days_since_expiry: 1}\n  then: {delete: true, deduct: true, notify: [sms, email]}\n",
    )
    plan = evaluator.plan([mailbox(-1)], evaluator.window(TODAY), MemoryHistory())
    assert [(d.kind, d.channel) for d in plan.actions] == [
        (Kind.DEDUCT, ""),
        (Kind.NOTIFY, "sms"),
        (Kind.NOTIFY, "email"),
        (Kind.DELETE, ""),
    ]
    assert plan.actions[1].template == "all-of-it"


def test_a_ranged_rule_acts_once_per_day_of_its_range(tmp_path: Path) -> None:
    evaluator = compile_rules(
        tmp_path,
        "- id: daily\n  when: {days_to_expiry: {between: [1, 3]}}\n  then: {notify: [email]}\n",
    )
    history = MemoryHistory()
    box = mailbox(3)
    steps: list[int] = []
    for n in range(5):
        plan = evaluator.plan([box], evaluator.window(TODAY + timedelta(days=n)), history)
        history.record(plan.decisions)
        steps.extend(d.step for d in plan.actions)
    assert steps == [-3, -2, -1]


def test_two_compilations_of_one_policy_coexist(tmp_path: Path) -> None:
    """A reload compiles the policy again while the old one may still be running."""
    first = compile_rules(
        tmp_path, "- id: probe\n  when: {days_to_expiry: 10}\n  then: {notify: [email]}\n"
    )
    second = Evaluator(first.policy)
    assert fired(first, mailbox(10)) == fired(second, mailbox(10)) == ["probe"]


def test_lifecycle_sections_compile_to_generic_rules(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        HEADER
        + textwrap.dedent(
            """\
            lifecycle:
              renewal_reminder: {days_before: [10], notify: [sms]}
              auto_renew: {days_before: 5, notify: [email]}
              auto_renew_failed: {notify: [email]}
            """
        ),
        encoding="utf-8",
    )
    evaluator = Evaluator(load_policy([path]))
    assert fired(evaluator, mailbox(10)) == ["renewal-reminder"]
    assert fired(evaluator, mailbox(5, auto_renew=True, balance="999")) == ["auto-renew"]
    assert fired(evaluator, mailbox(5, auto_renew=True)) == ["auto-renew-failed"]
    assert fired(evaluator, mailbox(3, auto_renew=True, balance="999")) == []
    assert {r.id: r.group for r in evaluator.policy.rules} == dict.fromkeys(
        ["renewal-reminder", "auto-renew", "auto-renew-failed"], "lifecycle"
    )
