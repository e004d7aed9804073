"""Random policies and mailboxes for the properties that compare two ways of deciding (the skip
and the whole, explain and dry-run)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import strategies as st

from renewd.core.model import Mailbox

from support import TODAY, mailbox

EDITIONS = frozenset({"free", "basic", "standard", "enterprise"})
DAY_FACTS = ("days_to_expiry", "days_since_expiry", "domain_days_to_expiry")
FLAGS = (
    "is_paid",
    "auto_renew",
    "balance_covers_fee",
    "renewed",
    "domain_via_provider",
    "has_phone",
)


@st.composite
def day_condition(draw: st.DrawFn) -> str:
    fact = draw(st.sampled_from(DAY_FACTS))
    kind = draw(st.sampled_from(("eq", "in", "between")))
    if kind == "eq":
        return f"{{{fact}: {draw(st.integers(-40, 40))}}}"
    if kind == "in":
        values = draw(st.lists(st.integers(-40, 40), min_size=1, max_size=4))
        return f"{{{fact}: {{in: {values}}}}}"
    low = draw(st.integers(-40, 40))
    return f"{{{fact}: {{between: [{low}, {low + draw(st.integers(0, 10))}]}}}}"


@st.composite
def rule(draw: st.DrawFn, number: int) -> str:
    anchor = draw(day_condition())
    extra = draw(st.lists(st.sampled_from(FLAGS), max_size=2, unique=True))
    flags = "".join(f", {{{flag}: {str(draw(st.booleans())).lower()}}}" for flag in extra)
    money = draw(
        st.sampled_from(
            ["", ", {balance: {lt: {field: renewal_fee}}}", ", {renewal_fee: {ge: 100.5}}"]
        )
    )
    negated = draw(
        st.sampled_from(
            ["", ", {not: {edition: free}}", ", {not: {any: [{locale: en}, {has_phone: false}]}}"]
        )
    )
    group = draw(st.sampled_from(["", "\n    group: g\n    priority: " + str(number)]))
    action = draw(
        st.sampled_from(
            ["{notify: [email, sms]}", "{deduct: true, notify: [email]}", "{delete: true}"]
        )
    )
    return f"  - id: r{number}\n    when: [{anchor}{flags}{money}{negated}]\n    then: {action}{group}\n"


@st.composite
def policies(draw: st.DrawFn) -> str:
    rules = [draw(rule(n)) for n in range(draw(st.integers(1, 5)))]
    return (
        "timezone: Asia/Shanghai\neditions: {free: [free], paid: [basic, standard, enterprise]}\nrules:\n"
        + "".join(rules)
    )


@st.composite
def mailboxes(draw: st.DrawFn) -> list[Mailbox]:
    """Mailboxes of up to four accounts; one account has one balance on every row (rows that
    disagree are a data error the reader reports: see `disputed`)."""
    balances = [str(draw(st.sampled_from([0, 50, 100.5, 120, 240, 1000]))) for _ in range(4)]
    boxes = []
    for n in range(draw(st.integers(1, 12))):
        domain_day = draw(st.one_of(st.none(), st.integers(-45, 45)))
        account = draw(st.integers(0, 3))
        boxes.append(
            mailbox(
                draw(st.integers(-45, 45)),
                mailbox_id=f"mb-{n}",
                account_id=f"acct-{account}",
                edition=draw(st.sampled_from(sorted(EDITIONS))),
                auto_renew=draw(st.booleans()),
                balance=balances[account],
                phone=draw(st.sampled_from(["", "+8613800138000"])),
                locale=draw(st.sampled_from(["en", "zh-CN"])),
                domain_via_provider=draw(st.booleans()),
                domain_expires_on=None
                if domain_day is None
                else TODAY + timedelta(days=domain_day),
            )
        )
    return boxes
