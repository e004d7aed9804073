"""The skip is exact: random policies and mailboxes decide the same with it and without it.

renewd works out from the rules which mailboxes no rule can match on a day and never shows them
to the engine; and a CSV line is validated by one pattern instead of field by field. Both are
shortcuts; these properties say they never change a result.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renewd.core.history import MemoryHistory
from renewd.core.model import Mailbox
from renewd.plan.evaluate import Evaluator
from renewd.policy.loader import load_policy
from renewd.snapshot.reader import Snapshot
from renewd.snapshot.rows import COLUMNS, BadField, parse_row

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


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    policy=policies(),
    boxes=mailboxes(),
    missed=st.integers(0, 6),
    disputed=st.sets(st.sampled_from([f"acct-{n}" for n in range(4)]), max_size=2),
)
def test_skipping_never_changes_a_decision(
    tmp_path: Path, policy: str, boxes: list[Mailbox], missed: int, disputed: set[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy, encoding="utf-8")
    loaded = load_policy([path])
    since = TODAY - timedelta(days=missed + 1)
    skipping, exhaustive = Evaluator(loaded), Evaluator(loaded, exhaustive=True)
    fast = skipping.plan(boxes, skipping.window(TODAY, since), MemoryHistory(), disputed)
    slow = exhaustive.plan(boxes, exhaustive.window(TODAY, since), MemoryHistory(), disputed)
    assert fast.decisions == slow.decisions


FIELD_VALUES = {
    "mailbox_id": st.sampled_from(["mb-1", "mb-2", "", "x" * 129, "mb\x01", "=cmd()", "邮箱-1"]),
    "account_id": st.sampled_from(["acct-1", "", "a" * 128]),
    "edition": st.sampled_from(["standard", "free", "premium", "Standard", ""]),
    "expires_on": st.sampled_from(
        [
            *("2026-12-31", "2026-02-30", "2026/01/01", "", "２０２６-01-01", "2028-02-29"),
            *("2027-02-29", "2026-04-31", "2026-04-30", "2026-01-31", "0000-01-01", "2026-00-10"),
        ]
    ),
    "auto_renew": st.sampled_from(["true", "FALSE", "yes", "1", "maybe", ""]),
    "balance": st.sampled_from(["0", "120.00", "-1", "1e5", "1.1234567", "007.50", "", "١٢"]),
    "renewal_fee": st.sampled_from(["120.00", "0.10", "-0.00", "abc"]),
    "currency": st.sampled_from(["CNY", "JPY", "cny", "US", "XTS", "RMB", ""]),
    "renewal_months": st.sampled_from(["", "12", "0", "120", "121", "007", "²"]),
    "email": st.sampled_from(
        ["a@example.com", "a@b", "a b@example.com", "x@" + "d" * 130 + ".com", "", "é@example.com"]
    ),
    "phone": st.sampled_from(["", "+8613800138000", "8613800138000", "+1٤١٥٥٥٥٠١٢٣", "+12"]),
    "locale": st.sampled_from(
        ["", "en", "zh-CN", "EN", "zh_CN", "en" + "-abcdefgh" * 9, "en" + "-abcdefgh" * 30]
    ),
    "domain": st.sampled_from(
        [
            "",
            "example.com",
            "mail.example.co.uk",
            "a.b.c.d.example.com",
            "-x.com",
            "x" * 70 + ".com",
        ]
    ),
    "domain_via_provider": st.sampled_from(["", "true", "no", "2"]),
    "domain_expires_on": st.sampled_from(["", "2027-01-01", "2027-13-01"]),
    "anchor_day": st.sampled_from(["", "1", "09", "31", "0", "32", "x"]),
}


VALID = {
    "mailbox_id": "mb-1",
    "account_id": "acct-1",
    "edition": "standard",
    "expires_on": "2026-12-31",
    "auto_renew": "true",
    "balance": "0",
    "renewal_fee": "120.00",
    "currency": "CNY",
    "renewal_months": "",
    "email": "a@example.com",
    "phone": "",
    "locale": "",
    "domain": "",
    "domain_via_provider": "",
    "domain_expires_on": "",
    "anchor_day": "",
}


@st.composite
def rows_near_valid(draw: st.DrawFn) -> dict[str, str]:
    """A valid row (each column's first value) with up to two columns changed: most rows then
    differ from a valid one in exactly the column under test."""
    row = dict(VALID)
    for column in draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), max_size=2, unique=True)):
        row[column] = draw(FIELD_VALUES[column])
    return row


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.lists(rows_near_valid(), min_size=1, max_size=8))
def test_the_one_pattern_check_accepts_exactly_what_the_field_checks_accept(
    tmp_path: Path, rows: list[dict[str, str]]
) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in COLUMNS])
    path = tmp_path / "snapshot.csv"
    path.write_text(text.getvalue(), encoding="utf-8")
    snapshot = Snapshot(path, EDITIONS, "en")
    got = {m.line: m for m in snapshot}
    for line, row in enumerate(rows, start=2):
        try:
            expected: Mailbox | None = parse_row(row, line, EDITIONS, "en")
        except BadField:
            expected = None
        assert got.get(line) == expected, (line, row)
    claimed = Counter(row["mailbox_id"] for row in rows if row["mailbox_id"])
    assert snapshot.duplicates == {i for i, count in claimed.items() if count > 1}
    assert snapshot.rows_read == len(rows)


def test_the_skip_leaves_most_mailboxes_out(shipped: Evaluator) -> None:
    """A check that the property above tests a skip that really skips."""
    window = shipped.window(TODAY)
    boxes = [mailbox(n, mailbox_id=f"mb-{n}") for n in range(-60, 365)]
    # D-30 ... D+30 steps, the eve of deletion, and every expiry in the week the low-balance
    # warning looks ahead (renewals due before it take their fee first)
    assert sum(window.may_match(b) for b in boxes) == 15
