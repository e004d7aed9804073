"""The opt-in auto-renewal retry in the pure core: the shipped policy plus the example file that
turns it on (a retry the day before expiry and 1, 7 and 15 days after it), one row per day of a
failed cycle; catch-up; the shared balance; the decline path; `check`'s limits; simulate."""

from __future__ import annotations

import shutil
import textwrap
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from renewd.config.load import load_config
from renewd.core.errors import ProblemsError
from renewd.core.history import MemoryHistory
from renewd.core.model import Kind, Mailbox
from renewd.core.money import Funds
from renewd.plan.evaluate import DayPlan, Evaluator
from renewd.plan.simulate import Simulation
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy

from support import ROOT, TODAY, mailbox

EXPIRES = TODAY + timedelta(days=3)  # today is the auto-renew day, D-3
RETRY = "auto-renew-retry"


@pytest.fixture(scope="module")
def retry_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    rules = tmp_path_factory.mktemp("rules")
    shutil.copy(ROOT / "rules" / "lifecycle.yaml", rules)
    shutil.copy(ROOT / "examples" / "auto-renew-retry.yaml", rules)
    return load_policy(policy_files(rules))


@pytest.fixture(scope="module")
def retrying(retry_policy: Policy) -> Evaluator:
    return Evaluator(retry_policy)


def on(offset: int) -> date:
    """The day `offset` days from expiry (negative before)."""
    return EXPIRES + timedelta(days=offset)


def box(balance: str = "50.00", **changes: Any) -> Mailbox:
    fields: dict[str, Any] = {"expires_on": EXPIRES, "auto_renew": True, "phone": "", **changes}
    return mailbox(**fields, balance=balance)


def plan(
    evaluator: Evaluator,
    boxes: list[Mailbox],
    day: date,
    history: MemoryHistory | None = None,
    since: date | None = None,
) -> DayPlan:
    return evaluator.plan(boxes, evaluator.window(day, since), history or MemoryHistory())


def acts(result: DayPlan, mailbox_id: str | None = None) -> list[tuple[str, int, str]]:
    return [
        (d.rule, d.step, d.kind.value) for d in result.actions if mailbox_id in (None, d.mailbox_id)
    ]


RENEWED = [(RETRY, 1, "deduct"), (RETRY, 1, "notify")]

DAYS = [
    # (situation, day, balance, expected actions, superseded rules)
    ("the day before expiry, still short: the usual reminder", -1, "50.00",
     [("renewal-reminder", -1, "notify")], set()),
    ("the day before expiry, topped up: renewed in time", -1, "500.00",
     [(RETRY, -1, "deduct"), (RETRY, -1, "notify")], {"renewal-reminder"}),
    ("expiry day: never a retry day here", 0, "500.00", [("expired", 0, "notify")], set()),
    ("first day after expiry, short: nothing at all", 1, "50.00", [], set()),
    ("first day after expiry, topped up: renewed after all", 1, "500.00", RENEWED, set()),
    ("a week after, topped up: the retry replaces the grace reminder", 7, "500.00",
     [(RETRY, 7, "deduct"), (RETRY, 7, "notify")], {"grace-reminder"}),
    ("a week after, short: the grace reminder as always", 7, "50.00",
     [("grace-reminder", 7, "notify")], set()),
    ("15 days after, topped up: the last retry", 15, "500.00",
     [(RETRY, 15, "deduct"), (RETRY, 15, "notify")], {"grace-reminder"}),
    ("16 days after: no retry day", 16, "500.00", [], set()),
    ("29 days after, topped up: only the reminder to renew by hand", 29, "500.00",
     [("grace-reminder", 29, "notify")], set()),
    ("deletion day, topped up: deleted as before", 30, "500.00",
     [("deletion", 30, "notify"), ("deletion", 30, "delete")], set()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("offset", "balance", "expected", "replaced"),
    [row[1:] for row in DAYS],
    ids=[row[0] for row in DAYS],
)
def test_a_day_of_a_failed_cycle(
    retrying: Evaluator, offset: int, balance: str, expected: list[object], replaced: set[str]
) -> None:
    result = plan(retrying, [box(balance)], on(offset))
    assert acts(result) == expected
    assert {d.rule for d in result.superseded} == replaced


@pytest.mark.parametrize(
    "changes",
    [{"auto_renew": False}, {"edition": "free"}],
    ids=["auto-renew off", "free edition"],
)
def test_no_retry_without_auto_renew_or_for_a_free_edition(
    retrying: Evaluator, changes: dict[str, object]
) -> None:
    assert acts(plan(retrying, [box("500.00", **changes)], on(1))) == []


def test_a_renewed_cycle_is_never_retried(retrying: Evaluator) -> None:
    history = MemoryHistory()
    history.record(plan(retrying, [box("500.00")], on(-3)).decisions)  # renewed on time
    for offset in (-1, 1, 7, 15):
        assert acts(plan(retrying, [box("500.00")], on(offset), history)) == [], offset


def test_the_shipped_policy_never_retries(shipped: Evaluator) -> None:
    for offset in (-1, 1, 7, 15):
        assert RETRY not in {d.rule for d in plan(shipped, [box("500.00")], on(offset)).decisions}


def test_the_retry_renews_into_the_anchored_next_cycle_which_begins_on_the_retry_day(
    retrying: Evaluator,
) -> None:
    monthly = box("500.00", expires_on=date(2027, 1, 31), renewal_months=1)
    history = MemoryHistory()
    result = plan(retrying, [monthly], date(2027, 2, 7))
    [deduct] = [d for d in result.actions if d.kind is Kind.DEDUCT]
    assert (deduct.step, deduct.next_expiry, deduct.anchor_day) == (7, date(2027, 2, 28), 31)
    history.record(result.decisions)
    state = history.cycle(monthly.mailbox_id, date(2027, 2, 28))
    assert (state.anchor_day, state.began) == (31, date(2027, 2, 7))
    # the next cycle's 15-day reminder (02-13) comes after the day it began; its 30-day one
    # would have been 01-29, before it
    renewed = box("380.00", expires_on=date(2027, 2, 28), renewal_months=1)
    reminders = [
        (day, acts(plan(retrying, [renewed], day, history)))
        for day in (date(2027, 2, 13), date(2027, 2, 21))
    ]
    assert reminders == [
        (date(2027, 2, 13), [("renewal-reminder", -15, "notify")]),
        (date(2027, 2, 21), [("renewal-reminder", -7, "notify")]),
    ]


def test_catch_up_makes_one_attempt_at_the_latest_retry_step(retrying: Evaluator) -> None:
    """Runs missed from D-3 to D+8: the balance now covers the fee; one charge, at D+7's step,
    and the steps it replaces (the expiry, the grace reminder) are superseded, not sent."""
    result = plan(retrying, [box("500.00")], on(9), since=on(-4))
    assert acts(result) == [(RETRY, 7, "deduct"), (RETRY, 7, "notify")]
    assert {d.rule for d in result.superseded} >= {"expired", "grace-reminder", "auto-renew"}


def test_a_missed_retry_still_counts_as_due_until_deletion(retrying: Evaluator) -> None:
    """The last run was on D+13: D+15's retry was missed, D+25's grace reminder came due later;
    the retry is made (renewal is possible until deletion), the reminder superseded."""
    result = plan(retrying, [box("500.00")], on(26), since=on(13))
    assert acts(result) == [(RETRY, 15, "deduct"), (RETRY, 15, "notify")]
    assert {d.rule for d in result.superseded} == {"grace-reminder"}


def test_on_the_deletion_day_a_missed_retry_is_not_made(retrying: Evaluator) -> None:
    result = plan(retrying, [box("500.00")], on(30), since=on(13))
    assert acts(result) == [("deletion", 30, "notify"), ("deletion", 30, "delete")]
    assert RETRY in {d.rule for d in result.superseded}


def test_a_decline_of_the_retry_leaves_the_grace_reminder_of_its_day(retrying: Evaluator) -> None:
    mb = box("500.00")
    window = retrying.window(on(7))
    declined = retrying.declined(mb, window, MemoryHistory(), Funds(Decimal("500.00")))
    assert [(d.rule, d.step, d.superseded_by) for d in declined] == [("grace-reminder", 7, "")]


def test_the_retry_takes_its_turn_in_the_shared_balance(retrying: Evaluator) -> None:
    """One account, 150.00: mb-late (expired 1 day ago, topped up) comes first in the plan's
    order (expiry), so its retry is paid and mb-soon's auto-renewal, the same day, fails."""
    late = box("150.00", mailbox_id="mb-late", account_id="acct")
    soon = box("150.00", mailbox_id="mb-soon", account_id="acct", expires_on=on(4))
    result = plan(retrying, [soon, late], on(1))
    assert acts(result, "mb-late") == RENEWED
    assert acts(result, "mb-soon") == [("auto-renew-failed", -3, "notify")]
    [funds] = {d.funds for d in result.actions if d.mailbox_id == "mb-soon"}
    assert funds == Funds(Decimal("30.00"))


def test_a_retry_before_expiry_is_a_renewal_to_come_in_the_shared_balance(
    retrying: Evaluator,
) -> None:
    """mb-first failed at D-3 and its account now holds 150.00; its retry the day before expiry
    is still to come, so mb-later's warning (7 days before its own expiry) counts it."""
    first = box("150.00", mailbox_id="mb-first", account_id="acct")
    later = box("150.00", mailbox_id="mb-later", account_id="acct", expires_on=on(5))
    result = plan(retrying, [later, first], on(-2))
    assert acts(result, "mb-later") == [("low-balance-warning", -7, "notify")]


def problems(tmp_path: Path, retry: str, extra: str = "") -> list[str]:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    shutil.copy(ROOT / "rules" / "lifecycle.yaml", rules)
    (rules / "retry.yaml").write_text(
        textwrap.dedent(f"lifecycle:\n  auto_renew_retry: {retry}\n{extra}"), encoding="utf-8"
    )
    try:
        load_policy(policy_files(rules))
    except ProblemsError as exc:
        return [str(p).split("rules/", 1)[1] for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        ("{days_after: [1, 7, 15], notify: [email]}", []),
        ("{days_before: [1, 0], notify: [email]}", []),
        (
            "{days_after: [7, 30], notify: [email]}",
            [
                "retry.yaml:2: lifecycle.auto_renew_retry: 30 days after expiry is on or after "
                "deletion (30 days after expiry); a retry must come before it"
            ],
        ),
        (
            "{days_before: [3], notify: [email]}",
            [
                "retry.yaml:2: lifecycle.auto_renew_retry: 3 days before expiry is on or before "
                "the auto-renewal (3 days before expiry); a retry comes after it"
            ],
        ),
        ("{notify: [email]}", ["retry.yaml:2: lifecycle.auto_renew_retry needs 'days_after' or "
                               "'days_before'"]),
        (
            "{days_after: [0], notify: [email]}",
            ["retry.yaml:2: lifecycle.auto_renew_retry.days_after must be a list of whole "
             "numbers >= 1"],
        ),
        (
            "{days_after: [1], notfy: [email]}",
            ["retry.yaml:2: unknown key 'notfy' in lifecycle.auto_renew_retry (did you mean "
             "'notify'?)"],
        ),
    ],
    ids=["after", "before", "on deletion", "on the auto-renew day", "no days", "day 0 after",
         "typo"],
)  # fmt: skip
def test_check_limits_the_retry_days(tmp_path: Path, retry: str, expected: list[str]) -> None:
    assert problems(tmp_path, retry) == expected


def test_a_retry_needs_an_auto_renewal_to_retry(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "p.yaml").write_text(
        "timezone: Asia/Shanghai\neditions: {free: [free], paid: [standard]}\n"
        "lifecycle:\n  auto_renew_retry: {days_after: [1], notify: [email]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ProblemsError) as caught:
        load_policy(policy_files(rules))
    assert [str(p).split("rules/", 1)[1] for p in caught.value.problems] == [
        "p.yaml:4: lifecycle.auto_renew_retry has no auto-renewal to retry: no rule deducts "
        "before expiry (add lifecycle.auto_renew)"
    ]


SNAPSHOT = (
    "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,email,locale\n"
    "mb-1,acct-1,standard,2027-01-15,true,50.00,120.00,CNY,a@example.cn,en\n"
)


def timeline(tmp_path: Path, policy: Policy, top_ups: dict[date, dict[str, Decimal]]) -> list[str]:
    snapshot = tmp_path / "snapshot.csv"
    snapshot.write_text(SNAPSHOT, encoding="utf-8")
    config = load_config(ROOT / "config.example.yaml")
    simulation = Simulation(config, policy, snapshot, top_ups=top_ups)
    return [
        f"{d.date} {d.rule} {d.kind.value}"
        for day in simulation.run(date(2027, 1, 10), date(2027, 2, 20))
        for d in day.actions
        if d.channel != "sms"
    ]


def test_simulate_applies_a_top_up_and_the_retry_renews(
    tmp_path: Path, retry_policy: Policy, shipped_policy: Policy
) -> None:
    top_up = {date(2027, 1, 17): {"acct-1": Decimal("100.00")}}
    assert timeline(tmp_path, retry_policy, top_up) == [
        "2027-01-12 auto-renew-failed notify",
        "2027-01-14 renewal-reminder notify",
        "2027-01-15 expired notify",
        "2027-01-22 auto-renew-retry deduct",  # 150.00 covers the fee from 01-17: D+7 retries
        "2027-01-22 auto-renew-retry notify",
    ]
    # without the retry, the same top-up changes nothing: grace reminders, then deletion
    without = timeline(tmp_path, shipped_policy, top_up)
    assert without[3:] == [
        "2027-01-22 grace-reminder notify",
        "2027-01-30 grace-reminder notify",
        "2027-02-09 grace-reminder notify",
        "2027-02-13 grace-reminder notify",
        "2027-02-14 deletion notify",
        "2027-02-14 deletion delete",
    ]
