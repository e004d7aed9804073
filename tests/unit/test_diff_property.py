"""`diff` plays an account again under the new policy only when a rule that differs can reach it
(`plan.diff.touching`). That is a shortcut: this property says it never changes the answer, by
holding the diff to two plain simulations, one per policy, on random policy changes."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renewd.config.load import load_config
from renewd.core.model import Mailbox
from renewd.plan.diff import Act, compare
from renewd.plan.simulate import Simulation
from renewd.policy.loader import load_policy
from renewd.policy.model import Policy
from strategies import mailboxes, rule

from support import ROOT, TODAY

HEADER = (
    "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,email,"
    "phone,locale,domain,domain_via_provider,domain_expires_on\n"
)
PREAMBLE = (
    "timezone: Asia/Shanghai\neditions: {free: [free], paid: [basic, standard, enterprise]}\n"
    "rules:\n"
)
END = TODAY + timedelta(days=20)


@st.composite
def changes(draw: st.DrawFn) -> tuple[str, str]:
    """A policy and the same policy with one rule replaced, removed or added."""
    old = [draw(rule(n)) for n in range(draw(st.integers(1, 4)))]
    new = list(old)
    edit = draw(st.sampled_from(["replace", "remove", "add"]))
    at = draw(st.integers(0, len(old) - 1))
    if edit == "replace":
        new[at] = draw(rule(at))
    elif edit == "remove" and len(old) > 1:
        del new[at]
    else:
        new.append(draw(rule(len(old))))
    return PREAMBLE + "".join(old), PREAMBLE + "".join(new)


def row(m: Mailbox) -> str:
    domain = m.domain_expires_on.isoformat() if m.domain_expires_on else ""
    return (
        f"{m.mailbox_id},{m.account_id},{m.edition},{m.expires_on},{str(m.auto_renew).lower()},"
        f"{m.balance},{m.renewal_fee},{m.currency},{m.mailbox_id}@example.cn,{m.phone},{m.locale},"
        f"example.cn,{str(m.domain_via_provider).lower()},{domain}\n"
    )


def simulated(policy: Policy, snapshot: Path) -> dict[str, Counter[Act]]:
    config = load_config(ROOT / "config.example.yaml")
    seen: defaultdict[str, Counter[Act]] = defaultdict(Counter)
    for plan in Simulation(config, policy, snapshot).run(TODAY, END):
        for decision in plan.actions:
            seen[decision.mailbox_id][Act.of(decision)] += 1
    return seen


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(change=changes(), boxes=mailboxes())
def test_the_diff_is_two_whole_simulations_compared(
    tmp_path: Path, change: tuple[str, str], boxes: list[Mailbox]
) -> None:
    policies = []
    for name, text in zip(("old.yaml", "new.yaml"), change, strict=True):
        (tmp_path / name).write_text(text, encoding="utf-8")
        policies.append(load_policy([tmp_path / name]))
    snapshot = tmp_path / "snapshot.csv"
    snapshot.write_text(HEADER + "".join(row(m) for m in boxes), encoding="utf-8")
    before, after = (simulated(policy, snapshot) for policy in policies)

    config = load_config(ROOT / "config.example.yaml")
    old, new = policies
    result = compare(config, old, new, snapshot, TODAY, END)
    try:
        found = {c.mailbox_id: (Counter(c.only_old), Counter(c.only_new)) for c in result.changes()}
        old_counts, new_counts = result.old.actions, result.new.actions
    finally:
        result.close()
    expected = {}
    for mailbox_id in before.keys() | after.keys():
        acts_old = before.get(mailbox_id, Counter())
        acts_new = after.get(mailbox_id, Counter())
        if acts_old != acts_new:
            expected[mailbox_id] = (acts_old - acts_new, acts_new - acts_old)
    assert found == expected
    for side, counts in ((before, old_counts), (after, new_counts)):
        labels = Counter(
            (act.rule, f"{act.kind}:{act.channel}" if act.channel else act.kind)
            for acts in side.values()
            for act in acts.elements()
        )
        assert +counts == labels
