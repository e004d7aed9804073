"""explain's "why not": the compiled conditions checked here agree with durable_rules.

Random conditions over every fact and operator (nested all/any/not, comparisons with constants
and with other facts, facts that are absent) are compiled into a policy; for random mailboxes,
days and cycles, `holds` must say exactly what the engine says, and `failures` must be empty
exactly when the rule matched. Then the words, for the conditions operators write.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from renewd.core.cycles import CycleState
from renewd.core.errors import ProblemsError
from renewd.core.facts import FACTS, FactType, derive
from renewd.core.model import Mailbox
from renewd.policy.engine import Engine
from renewd.policy.loader import load_policy
from renewd.policy.model import Policy
from renewd.policy.reasons import failures, holds

from support import TODAY, mailbox

DAY_FACTS = ("days_to_expiry", "days_since_expiry", "domain_days_to_expiry")
CONSTANTS: dict[FactType, list[str]] = {
    FactType.INT: ["-7", "0", "3", "12", "30"],
    FactType.MONEY: ["0", "50", "100.5", "120", "120.00", "240"],
    FactType.BOOL: ["true", "false"],
    FactType.STR: ["en", "zh-CN", "standard", "free", "CNY", "USD"],
}
ORDERED = ("eq", "ne", "lt", "le", "gt", "ge")


@st.composite
def comparison(draw: st.DrawFn) -> str:
    fact = draw(st.sampled_from(sorted(FACTS)))
    kind = FACTS[fact]
    values = CONSTANTS[kind]
    shape = draw(st.sampled_from(["value", "op", "field", "in", "not_in", "between"]))
    ordered = kind in (FactType.INT, FactType.MONEY)
    if shape == "value" or (shape == "between" and not ordered):
        return f"{{{fact}: {draw(st.sampled_from(values))}}}"
    if shape == "field":
        others = sorted(f for f in FACTS if FACTS[f] is kind and f != fact)
        op = draw(st.sampled_from(ORDERED if ordered else ("eq", "ne")))
        return f"{{{fact}: {{{op}: {{field: {draw(st.sampled_from(others))}}}}}}}"
    if shape in ("in", "not_in"):
        chosen = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))
        return f"{{{fact}: {{{shape}: [{', '.join(chosen)}]}}}}"
    if shape == "between":
        low, high = sorted(draw(st.lists(st.sampled_from(values), min_size=2, max_size=2)))
        return f"{{{fact}: {{between: [{low}, {high}]}}}}"
    op = draw(st.sampled_from(ORDERED if ordered else ("eq", "ne")))
    return f"{{{fact}: {{{op}: {draw(st.sampled_from(values))}}}}}"


def conditions(depth: int = 2) -> st.SearchStrategy[str]:
    if depth == 0:
        return comparison()
    inner = conditions(depth - 1)
    nested = st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda items: f"{{all: [{', '.join(items)}]}}"),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: f"{{any: [{', '.join(items)}]}}"),
        inner.map(lambda item: f"{{not: {item}}}"),
    )
    return st.one_of(comparison(), nested)


@st.composite
def policies(draw: st.DrawFn) -> str:
    rules = []
    for n in range(draw(st.integers(1, 4))):
        day = draw(st.sampled_from(DAY_FACTS))
        days = draw(st.lists(st.integers(-4, 4), min_size=1, max_size=3))
        anchor = draw(
            st.sampled_from(
                # every rule must name its days: mostly days that always hold here, so that the
                # rule's outcome is its random condition's
                ["{days_to_expiry: {between: [-40, 40]}}"] * 3 + [f"{{{day}: {{in: {days}}}}}"]
            )
        )
        when = f"[{anchor}, {draw(conditions())}]"
        rules.append(f"  - id: r{n}\n    when: {when}\n    then: {{notify: [email]}}\n")
    return (
        "timezone: Asia/Shanghai\neditions: {free: [free], paid: [basic, standard]}\nrules:\n"
        + "".join(rules)
    )


@st.composite
def situations(draw: st.DrawFn) -> tuple[Mailbox, dict[str, Any]]:
    domain = draw(st.one_of(st.none(), st.integers(-4, 4)))
    box = mailbox(
        draw(st.integers(-4, 4)),
        edition=draw(st.sampled_from(["free", "basic", "standard"])),
        auto_renew=draw(st.booleans()),
        balance=draw(st.sampled_from(["0", "50", "100.5", "120", "240"])),
        renewal_fee=draw(st.sampled_from(["0", "50", "120", "120.00"])),
        currency=draw(st.sampled_from(["CNY", "USD"])),
        renewal_months=draw(st.sampled_from([1, 3, 12])),
        phone=draw(st.sampled_from(["", "+8613800138000"])),
        locale=draw(st.sampled_from(["en", "zh-CN"])),
        domain_via_provider=draw(st.booleans()),
        domain_expires_on=None if domain is None else TODAY + timedelta(days=domain),
    )
    day = TODAY + timedelta(days=draw(st.integers(-3, 3)))
    cycle = CycleState(renewed=draw(st.booleans()), reminded=draw(st.booleans()))
    facts = derive(
        box,
        day,
        is_paid=box.edition != "free",
        available=box.balance - draw(st.sampled_from([0, 70])),
        cycle=cycle,
        short=draw(st.booleans()),
    )
    return box, facts


def compile_policy(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return load_policy([path])


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=policies(), seen=st.lists(situations(), min_size=1, max_size=10))
def test_why_not_agrees_with_the_engine(
    tmp_path: Path, text: str, seen: list[tuple[Mailbox, dict[str, Any]]]
) -> None:
    try:
        policy = compile_policy(tmp_path, text)
    except ProblemsError:  # day conditions that contradict, or bound both anchors
        assume(False)
    engine = Engine(policy)
    for _, facts in seen:
        asked = engine._ask(facts)  # durable_rules itself, not the memo
        assert engine.matches(facts) == asked  # ...and the memo gives its answer
        for rule in policy.rules:
            assert holds(rule.when, facts) == (rule.id in asked), (rule.id, facts)
            assert (failures(rule.when, facts) == []) == (rule.id in asked)


@pytest.mark.parametrize(
    ("days", "rule", "changes", "expected"),
    [
        (12, "renewal-reminder", {}, ["days_to_expiry is 12, needs one of 30, 15, 7, 3, 1"]),
        (3, "auto-renew", {"auto_renew": True}, ["balance_covers_fee is false, needs true"]),
        (
            3,
            "auto-renew",
            {},
            ["auto_renew is false, needs true", "balance_covers_fee is false, needs true"],
        ),
        (-30, "deletion", {"edition": "free"}, ["is_paid is false, needs true"]),
        (
            5,
            "domain-expiry",
            {},
            [
                "domain_via_provider is false, needs true",
                "domain_days_to_expiry is absent (no domain expiry date), needs one of 30, 7, 0",
            ],
        ),
        (7, "renewal-reminder", {}, []),
    ],
)
def test_why_a_shipped_rule_does_not_act(
    shipped_policy: Policy, days: int, rule: str, changes: dict[str, Any], expected: list[str]
) -> None:
    box = mailbox(days, **changes)
    facts = derive(
        box, TODAY, is_paid=box.edition != "free", available=box.balance, cycle=CycleState()
    )
    (found,) = [r for r in shipped_policy.rules if r.id == rule]
    assert failures(found.when, facts) == expected


RULE = """\
timezone: Asia/Shanghai
editions: {free: [free], paid: [basic, standard, enterprise]}
rules:
  - id: call
    when:
      days_to_expiry: {between: [10, 12]}
      balance: {lt: {field: renewal_fee}}
      locale: {not_in: [en, fr]}
      renewal_fee: {ge: 100.5}
      any: [{edition: enterprise}, {not: {has_phone: true}}]
    then: {notify: [email]}
"""


def test_why_a_written_rule_does_not_act(tmp_path: Path) -> None:
    (rule,) = compile_policy(tmp_path, RULE).rules
    box = mailbox(5, balance="200", renewal_fee="60.5", locale="en")
    facts = derive(box, TODAY, is_paid=True, available=box.balance, cycle=CycleState())
    assert failures(rule.when, facts) == [
        "days_to_expiry is 5, needs 10 to 12",
        "balance is 200.00, needs less than renewal_fee (60.50)",
        "locale is en, needs anything but en",
        "renewal_fee is 60.50, needs at least 100.50",
        "needs one of: edition is standard, needs enterprise | has_phone is true, needs false",
    ]


POLICY = (
    "timezone: Asia/Shanghai\neditions: {{free: [free], paid: [basic]}}\nrules:\n"
    "  - id: alone\n    when: {when}\n    then: {{notify: [email]}}\n"
)


@pytest.mark.parametrize("op", ORDERED)
@pytest.mark.parametrize("operand", ["3", "{field: days_to_expiry}", "{field: days_since_expiry}"])
@pytest.mark.parametrize("negated", [False, True])
def test_an_absent_fact_fails_every_comparison_negated_or_not(
    tmp_path: Path, op: str, operand: str, negated: bool
) -> None:
    """The README's promise for a mailbox without a domain date, held for the engine and for
    explain alike, on both sides of a comparison between facts."""
    anchor = "{days_to_expiry: {between: [-40, 40]}}"
    written = [f"{{domain_days_to_expiry: {{{op}: {operand}}}}}"]
    if operand.startswith("{field"):
        other = operand.split()[1].rstrip("}")
        written.append(f"{{{other}: {{{op}: {{field: domain_days_to_expiry}}}}}}")
    for comparison_text in written:
        when = f"{{not: {comparison_text}}}" if negated else comparison_text
        try:  # inside an `all`, where durable_rules once took a missing `$m` fact as true
            text = POLICY.format(when=f"[{anchor}, {when}]")
            (rule,) = compile_policy(tmp_path, text).rules
        except ProblemsError:  # the comparison itself names the domain's days: alone, then
            text = POLICY.format(when=when)
            (rule,) = compile_policy(tmp_path, text).rules
        box = mailbox(3)  # no domain: domain_days_to_expiry is absent
        facts = derive(box, TODAY, is_paid=True, available=box.balance, cycle=CycleState())
        assert "domain_days_to_expiry" not in facts
        assert Engine(compile_policy(tmp_path, text))._ask(facts) == ()
        assert not holds(rule.when, facts)
        assert failures(rule.when, facts)
