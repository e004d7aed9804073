"""The pure core with the shipped policy: one row per lifecycle situation, edge days included."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from renewd.core.cycles import CycleState
from renewd.core.history import MemoryHistory
from renewd.core.model import Kind, Mailbox, StepKey
from renewd.plan.evaluate import DayPlan, Evaluator

from support import TODAY, mailbox

Action = tuple[str, str]  # (rule, "notify:email" | "deduct:120.00" | "delete")


def plan_for(
    evaluator: Evaluator,
    mailboxes: list[Mailbox],
    history: MemoryHistory | None = None,
    today: date = TODAY,
    since: date | None = None,
) -> DayPlan:
    return evaluator.plan(mailboxes, evaluator.window(today, since), history or MemoryHistory())


def actions(plan: DayPlan, mailbox_id: str | None = None) -> list[Action]:
    return [
        _show(d.rule, d.kind, d.channel, d.amount)
        for d in plan.actions
        if mailbox_id in (None, d.mailbox_id)
    ]


def superseded(plan: DayPlan) -> set[str]:
    return {d.rule for d in plan.superseded}


def _show(rule: str, kind: Kind, channel: str, amount: Decimal | None) -> Action:
    if kind is Kind.NOTIFY:
        return rule, f"notify:{channel}"
    if kind is Kind.DEDUCT:
        return rule, f"deduct:{amount}"
    return rule, kind.value


BOTH = ("notify:email", "notify:sms")


def both(rule: str) -> list[Action]:
    return [(rule, channel) for channel in BOTH]


LIFECYCLE = [
    # (situation, mailbox, expected actions, expected superseded rules)
    ("31 days before: nothing yet", mailbox(31), [], set()),
    ("30 days before: first reminder", mailbox(30), both("renewal-reminder"), set()),
    ("29 days before: between steps", mailbox(29), [], set()),
    ("15 days before", mailbox(15), both("renewal-reminder"), set()),
    ("7 days before, auto-renew off", mailbox(7), both("renewal-reminder"), set()),
    (
        "7 days before, auto-renew on, balance covers",
        mailbox(7, auto_renew=True, balance="500"),
        both("renewal-reminder"),
        set(),
    ),
    (
        "7 days before, auto-renew on, balance short: warning replaces the reminder",
        mailbox(7, auto_renew=True, balance="119.99"),
        both("low-balance-warning"),
        {"renewal-reminder"},
    ),
    (
        "3 days before, auto-renew on, balance covers: fee deducted, success email",
        mailbox(3, auto_renew=True, balance="500"),
        [("auto-renew", "deduct:120.00"), ("auto-renew", "notify:email")],
        {"renewal-reminder"},
    ),
    (
        "3 days before, balance exactly the fee",
        mailbox(3, auto_renew=True, balance="120.00"),
        [("auto-renew", "deduct:120.00"), ("auto-renew", "notify:email")],
        {"renewal-reminder"},
    ),
    (
        "3 days before, one cent short: failure notice",
        mailbox(3, auto_renew=True, balance="119.99"),
        both("auto-renew-failed"),
        {"renewal-reminder"},
    ),
    (
        "3 days before, auto-renew off: plain reminder",
        mailbox(3, balance="500"),
        both("renewal-reminder"),
        set(),
    ),
    ("2 days before", mailbox(2), [], set()),
    ("1 day before", mailbox(1), both("renewal-reminder"), set()),
    ("expiry day", mailbox(0), both("expired"), set()),
    ("1 day after", mailbox(-1), [], set()),
    ("7 days after", mailbox(-7), both("grace-reminder"), set()),
    ("15 days after", mailbox(-15), both("grace-reminder"), set()),
    ("25 days after", mailbox(-25), both("grace-reminder"), set()),
    ("29 days after: last day renewal is possible", mailbox(-29), both("grace-reminder"), set()),
    (
        "30 days after: deleted, told by email",
        mailbox(-30),
        [("deletion", "notify:email"), ("deletion", "delete")],
        set(),
    ),
    ("31 days after: nothing more", mailbox(-31), [], set()),
    ("free edition, 30 days before", mailbox(30, edition="free"), [], set()),
    ("free edition, 30 days after", mailbox(-30, edition="free"), [], set()),
    (
        "free edition, auto-renew day",
        mailbox(3, edition="free", auto_renew=True, balance="500"),
        [],
        set(),
    ),
    ("no phone: email only", mailbox(30, phone=""), [("renewal-reminder", "notify:email")], set()),
    (
        "domain from us expires in 7 days",
        mailbox(
            100,
            domain="example.com",
            domain_via_provider=True,
            domain_expires_on=TODAY + timedelta(days=7),
        ),
        [("domain-expiry", "notify:email")],
        set(),
    ),
    (
        "domain from us expires today",
        mailbox(100, domain="example.com", domain_via_provider=True, domain_expires_on=TODAY),
        [("domain-expiry", "notify:email")],
        set(),
    ),
    (
        "domain bought elsewhere: not our business",
        mailbox(100, domain="example.com", domain_via_provider=False, domain_expires_on=TODAY),
        [],
        set(),
    ),
    (
        "domain warning is not merged with the lifecycle message",
        mailbox(
            30,
            domain="example.com",
            domain_via_provider=True,
            domain_expires_on=TODAY + timedelta(days=30),
        ),
        [*both("renewal-reminder"), ("domain-expiry", "notify:email")],
        set(),
    ),
]


@pytest.mark.parametrize(
    ("box", "expected", "replaced"),
    [row[1:] for row in LIFECYCLE],
    ids=[row[0] for row in LIFECYCLE],
)
def test_lifecycle_day(
    shipped: Evaluator, box: Mailbox, expected: list[Action], replaced: set[str]
) -> None:
    plan = plan_for(shipped, [box])
    assert actions(plan) == expected
    assert superseded(plan) == replaced


def test_renewed_cycle_gets_nothing_more(shipped: Evaluator) -> None:
    history = MemoryHistory()
    box = mailbox(3, auto_renew=True, balance="500")
    history.record(plan_for(shipped, [box]).decisions)
    assert history.cycle(box.mailbox_id, box.expires_on) == CycleState(renewed=True, reminded=True)
    for days_later in (2, 3, 10, 33):
        later = TODAY + timedelta(days=days_later)
        assert plan_for(shipped, [box], history, today=later).actions == [], days_later


def test_new_expiry_starts_a_new_cycle(shipped: Evaluator) -> None:
    history = MemoryHistory()
    box = mailbox(30)
    history.record(plan_for(shipped, [box]).decisions)
    assert plan_for(shipped, [box], history).actions == []
    renewed_manually = mailbox(30 + 365)
    next_year = TODAY + timedelta(days=365)
    assert actions(plan_for(shipped, [renewed_manually], history, today=next_year)) == both(
        "renewal-reminder"
    )


def test_shared_balance_pays_the_earliest_expiry_first(shipped: Evaluator) -> None:
    first = mailbox(3, mailbox_id="mb-b", auto_renew=True, balance="150")
    second = mailbox(3, mailbox_id="mb-a", auto_renew=True, balance="150")
    later = mailbox(3, mailbox_id="mb-0", auto_renew=True, balance="150")
    # Same expiry: mailbox id decides. The order of the input must not matter.
    for order in ([first, second, later], [later, second, first]):
        plan = plan_for(shipped, order)
        assert actions(plan, "mb-0") == [
            ("auto-renew", "deduct:120.00"),
            ("auto-renew", "notify:email"),
        ]
        assert actions(plan, "mb-a") == both("auto-renew-failed")
        assert actions(plan, "mb-b") == both("auto-renew-failed")


def test_shared_balance_earlier_expiry_beats_lower_id(shipped: Evaluator) -> None:
    soon = mailbox(3, mailbox_id="mb-z", auto_renew=True, balance="150")
    weekly = mailbox(4, mailbox_id="mb-a", auto_renew=True, balance="150")
    plan = plan_for(
        shipped, [weekly, soon], since=TODAY - timedelta(days=1), today=TODAY + timedelta(days=1)
    )
    assert actions(plan, "mb-z")[0] == ("auto-renew", "deduct:120.00")
    assert actions(plan, "mb-a") == both("auto-renew-failed")


def test_balance_covering_two_fees_pays_both(shipped: Evaluator) -> None:
    boxes = [mailbox(3, mailbox_id=f"mb-{n}", auto_renew=True, balance="240.00") for n in (1, 2)]
    plan = plan_for(shipped, boxes)
    assert [d.mailbox_id for d in plan.actions if d.kind is Kind.DEDUCT] == ["mb-1", "mb-2"]


def test_unseen_deductions_reduce_the_balance(shipped: Evaluator) -> None:
    class Debited(MemoryHistory):
        def unseen_debits(self, account_id: str) -> Decimal:
            return Decimal("100.00")

    box = mailbox(3, auto_renew=True, balance="200.00")
    assert actions(plan_for(shipped, [box], Debited())) == both("auto-renew-failed")


def test_catch_up_does_only_the_latest_missed_step(shipped: Evaluator) -> None:
    box = mailbox(5)  # today is D-5; the run on D-15 and the run on D-7 were both missed
    plan = plan_for(shipped, [box], since=TODAY - timedelta(days=11))
    assert actions(plan) == both("renewal-reminder")
    assert {d.step for d in plan.actions} == {-7}


def test_catch_up_never_repeats_a_done_step(shipped: Evaluator) -> None:
    box = mailbox(5)
    history = MemoryHistory()
    history.record(plan_for(shipped, [box], today=TODAY - timedelta(days=2)).decisions)  # D-7 done
    plan = plan_for(shipped, [box], history, since=TODAY - timedelta(days=11))
    assert plan.actions == []


def test_missed_auto_renew_day_is_caught_up(shipped: Evaluator) -> None:
    box = mailbox(2, auto_renew=True, balance="500")  # D-3 was missed
    plan = plan_for(shipped, [box], since=TODAY - timedelta(days=2))
    assert actions(plan)[0] == ("auto-renew", "deduct:120.00")
    assert plan.actions[0].step == -3


def test_superseded_step_counts_as_done(shipped: Evaluator) -> None:
    box = mailbox(3, auto_renew=True, balance="0")
    history = MemoryHistory()
    history.record(plan_for(shipped, [box]).decisions)
    assert history.done(StepKey(box.mailbox_id, "renewal-reminder", box.expires_on, -3))
    rerun = plan_for(shipped, [box], history, since=TODAY - timedelta(days=1))
    assert rerun.actions == [] and rerun.superseded == []


def test_every_step_once_per_cycle_over_a_whole_cycle(shipped: Evaluator) -> None:
    box = mailbox(40)
    history = MemoryHistory()
    seen: dict[StepKey, None] = {}
    for n in range(0, 80):
        plan = plan_for(shipped, [box], history, today=TODAY + timedelta(days=n))
        seen.update(dict.fromkeys(d.key for d in plan.actions))
        history.record(plan.decisions)
    assert [(k.rule, k.step) for k in seen] == [
        ("renewal-reminder", -30),
        ("renewal-reminder", -15),
        ("renewal-reminder", -7),
        ("renewal-reminder", -3),
        ("renewal-reminder", -1),
        ("expired", 0),
        ("grace-reminder", 7),
        ("grace-reminder", 15),
        ("grace-reminder", 25),
        ("grace-reminder", 29),
        ("deletion", 30),
    ]


def test_mailboxes_far_from_any_step_are_skipped(shipped: Evaluator) -> None:
    window = shipped.window(TODAY)
    assert not window.may_match(mailbox(200))
    assert window.may_match(mailbox(30))
    assert window.may_match(mailbox(200, domain_via_provider=True, domain_expires_on=TODAY))
