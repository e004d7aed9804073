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
from strategies import EDITIONS, mailboxes, policies

from support import TODAY, mailbox


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
    "currency": st.sampled_from(["CNY", "cny", "US", ""]),
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
