"""One money model and one cycle model, from the customer's side: which message each mailbox of an
account receives on which day, and the amounts and dates it states."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from renewd.config.model import MessageSettings
from renewd.core.cycles import CycleState, cycle_of
from renewd.core.history import MemoryHistory
from renewd.core.model import Decision, Kind, Mailbox
from renewd.delivery.messages import variables
from renewd.delivery.templating import Renderer
from renewd.plan.evaluate import DayPlan, Evaluator
from renewd.policy.model import Policy

from support import TODAY, mailbox

SETTINGS = MessageSettings()


def day(offset: int) -> date:
    return TODAY + timedelta(days=offset)


def plan_on(
    evaluator: Evaluator,
    boxes: list[Mailbox],
    today: date = TODAY,
    history: MemoryHistory | None = None,
    since: date | None = None,
    disputed: frozenset[str] = frozenset(),
) -> DayPlan:
    plan = evaluator.plan(
        boxes, evaluator.window(today, since), history or MemoryHistory(), disputed
    )
    if history is not None:
        history.record(plan.decisions)
    return plan


def emails(evaluator: Evaluator, plan: DayPlan, boxes: list[Mailbox]) -> dict[str, Any]:
    """Each mailbox's email of the day: (rule, its template variables)."""
    by_id = {box.mailbox_id: box for box in boxes}
    return {
        d.mailbox_id: (d.rule, variables(by_id[d.mailbox_id], d, evaluator.policy, SETTINGS))
        for d in plan.actions
        if d.channel == "email"
    }


def charged(plan: DayPlan) -> list[tuple[str, Decimal | None]]:
    return [(d.mailbox_id, d.amount) for d in plan.actions if d.kind is Kind.DEDUCT]


def shared(*fees: str, balance: str, offset: int = 3, **changes: Any) -> list[Mailbox]:
    """Mailboxes mb-1, mb-2, ... of one account with auto-renew on, expiring `offset` days on."""
    return [
        mailbox(
            offset,
            mailbox_id=f"mb-{n}",
            account_id="acct-shared",
            auto_renew=True,
            balance=balance,
            renewal_fee=fee,
            **changes,
        )
        for n, fee in enumerate(fees, 1)
    ]


# -- one balance, paid in order, told as it is -------------------------------------------------


def test_every_renewal_of_the_day_is_told_what_is_left_after_the_ones_before(
    shipped: Evaluator,
) -> None:
    """300.00 pays the first two fees of the day (100 + 100); the third (150) fails, and each
    message says so with the amounts that are true after the renewals before it."""
    boxes = shared("100.00", "100.00", "150.00", balance="300.00")
    plan = plan_on(shipped, boxes)
    assert charged(plan) == [("mb-1", Decimal("100.00")), ("mb-2", Decimal("100.00"))]
    told = emails(shipped, plan, boxes)
    assert told["mb-1"][0] == told["mb-2"][0] == "auto-renew"
    assert told["mb-1"][1]["balance_after"] == "¥200.00"
    assert told["mb-2"][1]["balance_after"] == "¥100.00"
    rule, third = told["mb-3"]
    assert rule == "auto-renew-failed"
    assert (third["balance"], third["fee"], third["shortfall"]) == (
        "¥100.00",
        "¥150.00",
        "¥50.00",
    )


def test_renewals_made_on_earlier_days_count_until_the_snapshot_shows_them(
    shipped: Evaluator,
) -> None:
    class Debited(MemoryHistory):
        def unseen_debits(self, account_id: str) -> Decimal:
            return Decimal("100.00")

    boxes = shared("100.00", balance="300.00")
    told = emails(shipped, plan_on(shipped, boxes, history=Debited()), boxes)
    assert told["mb-1"][1]["balance_after"] == "¥100.00"


def test_the_low_balance_warning_counts_the_renewals_that_come_first(shipped: Evaluator) -> None:
    """150.00 and two renewals of 120.00 on the same day: a week before, the second mailbox is
    warned (the first takes 120 of the 150); on the day, the first is renewed, the second fails
    having been warned."""
    boxes = shared("120.00", "120.00", balance="150.00", offset=7)
    history = MemoryHistory()
    week = plan_on(shipped, boxes, history=history)
    told = emails(shipped, week, boxes)
    assert told["mb-1"][0] == "renewal-reminder"
    rule, warned = told["mb-2"]
    assert rule == "low-balance-warning"
    assert (warned["balance"], warned["committed"], warned["shortfall"]) == (
        "¥150.00",
        "¥120.00",
        "¥90.00",
    )
    assert warned["has_committed"] is True
    renewal_day = plan_on(shipped, boxes, today=day(4), history=history)
    assert charged(renewal_day) == [("mb-1", Decimal("120.00"))]
    failed = emails(shipped, renewal_day, boxes)["mb-2"]
    assert failed[0] == "auto-renew-failed"
    assert (failed[1]["balance"], failed[1]["shortfall"]) == ("¥30.00", "¥90.00")


def test_a_renewal_due_before_a_later_mailbox_is_counted_in_its_warning(
    shipped: Evaluator,
) -> None:
    """The mailbox expiring in 5 days renews in 2 days and takes its fee first: the one expiring
    in 7 days, on its warning day, is short."""
    soon = mailbox(5, mailbox_id="mb-soon", account_id="acct", auto_renew=True, balance="150")
    later = mailbox(7, mailbox_id="mb-later", account_id="acct", auto_renew=True, balance="150")
    told = emails(shipped, plan_on(shipped, [later, soon]), [soon, later])
    assert list(told) == ["mb-later"]  # nothing is due for mb-soon today
    assert told["mb-later"][0] == "low-balance-warning"
    assert told["mb-later"][1]["shortfall"] == "¥90.00"
    alone = emails(shipped, plan_on(shipped, [later]), [later])
    assert alone["mb-later"][0] == "renewal-reminder"  # without the other renewal it is covered


def test_a_declined_charge_is_not_explained_by_a_balance_that_covers_it(
    shipped: Evaluator,
) -> None:
    box = mailbox(3, auto_renew=True, balance="500.00", locale="en")
    plan = plan_on(shipped, [box])
    deduct = next(d for d in plan.actions if d.kind is Kind.DEDUCT)
    assert deduct.funds is not None
    window = shipped.window(TODAY)
    declined = shipped.declined(box, window, MemoryHistory(), deduct.funds)
    fallback = [d for d in declined if d.channel and not d.superseded_by]
    assert [d.rule for d in fallback] == ["auto-renew-failed", "auto-renew-failed"]
    values = variables(box, fallback[0], shipped.policy, SETTINGS, declined=True)
    assert values["balance"] == "CN¥500.00"
    email = Renderer(None, "en").email("auto-renew-failed", "en", values)
    assert "was declined" in email.text and "does not cover" not in email.text
    assert "first add at least" not in email.text


# -- catch-up: the step that came due last says where the mailbox is -------------------------

CATCH_UP = [
    # (situation, balance, days before expiry of the last run and of this one, sent, charged,
    #  superseded)
    (
        "short balance, no run from D-10 to D+2: told it expired",
        "50.00",
        (10, -2),
        "expired",
        [],
        {"auto-renew-failed", "low-balance-warning", "renewal-reminder"},
    ),
    (
        "balance covers, no run from D-10 to D-1: renewed then, no reminder",
        "500.00",
        (10, 1),
        "auto-renew",
        [("mb-1", Decimal("120.00"))],
        {"renewal-reminder"},
    ),
    (
        "balance covers, no run from D-10 to D+1: never charged after expiry",
        "500.00",
        (10, -1),
        "expired",
        [],
        {"auto-renew", "renewal-reminder"},
    ),
    (
        "short balance, no run from D-10 to D-2: the failure is the news",
        "50.00",
        (10, 2),
        "auto-renew-failed",
        [],
        {"low-balance-warning", "renewal-reminder"},
    ),
]


@pytest.mark.parametrize(
    ("balance", "runs", "sent", "charges", "replaced"),
    [row[1:] for row in CATCH_UP],
    ids=[row[0] for row in CATCH_UP],
)
def test_a_late_run_tells_where_the_mailbox_is_now(
    shipped: Evaluator,
    balance: str,
    runs: tuple[int, int],
    sent: str,
    charges: list[tuple[str, Decimal]],
    replaced: set[str],
) -> None:
    box = mailbox(runs[1], auto_renew=True, balance=balance)
    since = TODAY - timedelta(days=runs[0] - runs[1])
    plan = plan_on(shipped, [box], since=since)
    assert {d.rule for d in plan.actions if d.channel} == {sent}
    assert charged(plan) == charges
    assert {d.rule for d in plan.superseded} == replaced


# -- an account whose rows disagree gets no money action ---------------------------------------


def test_an_account_whose_rows_disagree_is_reminded_but_not_charged(shipped: Evaluator) -> None:
    boxes = shared("120.00", balance="500.00")
    plan = plan_on(shipped, boxes, disputed=frozenset({"acct-shared"}))
    assert charged(plan) == []
    assert {d.rule for d in plan.actions} == {"renewal-reminder"}
    week = plan_on(
        shipped,
        shared("120.00", balance="0.00", offset=7),
        disputed=frozenset({"acct-shared"}),
    )
    assert {d.rule for d in week.actions} == {"renewal-reminder"}  # no low-balance warning


# -- the cycle: anchored renewals, and steps that belong to no one -----------------------------

ANCHORED = [
    # (expires_on, months, snapshot anchor_day, the next expiries)
    (date(2027, 1, 31), 1, None, [date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]),
    (
        date(2028, 2, 29),
        12,
        None,
        [date(2029, 2, 28), date(2030, 2, 28), date(2031, 2, 28), date(2032, 2, 29)],
    ),
    (date(2027, 2, 28), 1, 31, [date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31)]),
    (date(2027, 2, 28), 1, 30, [date(2027, 3, 30), date(2027, 4, 30), date(2027, 5, 30)]),
    (date(2027, 3, 31), 1, 15, [date(2027, 4, 30), date(2027, 5, 31), date(2027, 6, 30)]),
]


@pytest.mark.parametrize(("expires_on", "months", "given", "ends"), ANCHORED)
def test_renewals_keep_the_day_of_the_month_they_are_anchored_on(
    expires_on: date, months: int, given: int | None, ends: list[date]
) -> None:
    """A misfit anchor (15 for an expiry on the 31st) is ignored: the expiry's own day counts."""
    box = mailbox(expires_on=expires_on, renewal_months=months, anchor_day=given)
    state, seen = CycleState(), []
    for _ in ends:
        cycle = cycle_of(box, state)
        seen.append(cycle.next_end)
        box = replace(box, expires_on=cycle.next_end)
        state = CycleState(anchor_day=cycle.anchor_day)  # what the ledger keeps of a renewal
    assert seen == ends


def test_a_cycle_renewed_three_days_early_sends_no_reminder_at_its_own_start(
    shipped: Evaluator,
) -> None:
    """Monthly, expiring on 2027-04-30, renewed on 04-27 to 05-30: the new cycle's "30 days
    left" step falls on 04-30, the day it begins, and is never sent."""
    box = mailbox(expires_on=date(2027, 4, 30), renewal_months=1, auto_renew=True, balance="1000")
    history = MemoryHistory()
    renewal = plan_on(shipped, [box], today=date(2027, 4, 27), history=history)
    deduct = next(d for d in renewal.actions if d.kind is Kind.DEDUCT)
    assert deduct.next_expiry == date(2027, 5, 30)
    renewed = replace(box, expires_on=date(2027, 5, 30))
    start = plan_on(shipped, [renewed], today=date(2027, 4, 30), history=history)
    assert start.decisions == []
    later = plan_on(shipped, [renewed], today=date(2027, 5, 15), history=history)
    assert {(d.rule, d.step) for d in later.actions} == {("renewal-reminder", -15)}


def test_a_late_renewal_begins_its_cycle_when_it_was_made() -> None:
    """Renewed 10 days after the old expiry: steps of the new cycle before that day are not its
    own."""
    box = mailbox(expires_on=date(2027, 5, 30), renewal_months=1)
    cycle = cycle_of(box, CycleState(began=date(2027, 5, 10)))
    assert cycle.began == date(2027, 5, 10)
    assert not cycle.holds(date(2027, 5, 10)) and cycle.holds(date(2027, 5, 11))
    assert cycle_of(box, CycleState()).began == date(2027, 4, 30)


# -- small truths in the texts ----------------------------------------------------------------


def message(policy: Policy, box: Mailbox, rule: str) -> dict[str, Any]:
    """The variables of the rule's message to `box` today."""
    decision = Decision(TODAY, box.mailbox_id, box.account_id, rule, box.expires_on, 0, Kind.NOTIFY)
    return variables(box, decision, policy, SETTINGS)


def test_a_renewal_says_the_last_day_with_service(shipped_policy: Policy) -> None:
    box = mailbox(expires_on=date(2027, 4, 30), renewal_months=1, locale="en")
    values = message(shipped_policy, box, "auto-renew")
    assert (values["new_expires_on"], values["new_last_day"]) == ("May 30, 2027", "May 29, 2027")
    text = Renderer(None, "en").email("auto-renew", "en", values).text
    assert "Valid through:      May 29, 2027" in text and "May 30" not in text


def test_a_free_mailbox_is_not_told_it_is_paid_for(shipped_policy: Policy) -> None:
    base = dict(domain="example.com", domain_via_provider=True, domain_expires_on=day(7))
    for edition, promised in (("standard", True), ("free", False)):
        for locale, phrase in (("en", "still paid for"), ("zh-CN", "仍在有效期内")):
            box = mailbox(100, edition=edition, locale=locale, **base)
            values = message(shipped_policy, box, "domain-expiry")
            text = Renderer(None, "en").email("domain-expiry", locale, values)
            assert (phrase in text.text) is promised, (edition, locale)


def test_the_renewal_url_carries_the_mailbox_id_as_one_value(shipped_policy: Policy) -> None:
    box = mailbox(30, mailbox_id="mb-url&admin=1#frag")
    values = message(shipped_policy, box, "renewal-reminder")
    assert values["renewal_url"] == (
        "https://mail.example.com/renew?mailbox=mb-url%26admin%3D1%23frag"
    )


def test_a_zero_fee_renews_free_of_charge(shipped: Evaluator) -> None:
    box = mailbox(3, auto_renew=True, balance="0.00", renewal_fee="0.00", locale="en")
    plan = plan_on(shipped, [box])
    assert charged(plan) == [("mb-1", Decimal("0.00"))]
    values = emails(shipped, plan, [box])["mb-1"][1]
    assert values["free"] is True
    text = Renderer(None, "en").email("auto-renew", "en", values).text
    assert "free of charge" in text and "¥0.00" not in text.split("Remaining")[0]
