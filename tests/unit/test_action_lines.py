"""The jsonl line of an action is one interface, however it is made: `ActionLine` (what simulate's
processes and dry-run write) gives exactly `json_line(decision_record(d))`, byte for byte."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from renewd.cli.report import ActionLine, decision_record, json_line
from renewd.core.model import Anchor, Decision, Kind

# Any text, with the characters JSON or a line reader treat specially drawn often.
TEXT = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(['"', "\\", "\n", "\x00", "\u2028", "\u2029", "\x85", "é", "名"]),
    ),
    max_size=12,
)


@st.composite
def decisions(draw: st.DrawFn) -> Decision:
    kind = draw(st.sampled_from(Kind))
    day = date(2027, 1, 1) + timedelta(days=draw(st.integers(-800, 800)))
    amount = draw(st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False)))
    return Decision(
        day,
        draw(TEXT),
        draw(TEXT),
        draw(TEXT),
        day - timedelta(days=draw(st.integers(-40, 40))),
        draw(st.integers(-400, 400)),
        kind,
        draw(st.sampled_from(Anchor)),
        draw(TEXT),
        draw(TEXT),
        amount,
        draw(TEXT),
        draw(st.sampled_from(["", "", "auto-renew"])),
    )


@settings(max_examples=300, deadline=None)  # a busy machine's first example is slow
@given(st.lists(decisions(), max_size=6))
def test_an_action_line_is_the_record_encoded(batch: list[Decision]) -> None:
    encode = ActionLine()  # one encoder for the batch: what it keeps of one rule serves the next
    for decision in batch:
        line = encode(decision)
        if decision.superseded_by:
            assert line is None
        else:
            assert line == json_line(decision_record(decision))
            assert line.count("\n") == 1 and len(line.splitlines()) == 1


def test_a_line_break_in_an_identifier_is_escaped() -> None:
    decision = Decision(
        date(2027, 1, 1),
        "mb\u20281",
        "acct\n",
        "renewal-reminder",
        date(2027, 1, 31),
        -30,
        Kind.NOTIFY,
        channel="email",
        template="renewal-reminder",
    )
    line = ActionLine()(decision)
    assert line is not None and "\u2028" not in line
    assert json.loads(line)["mailbox_id"] == "mb\u20281"
    assert json.loads(line)["account_id"] == "acct\n"


def test_a_deduction_carries_its_own_amount_each_time() -> None:
    encode = ActionLine()
    first, second = (
        Decision(
            date(2027, 1, 1),
            f"mb-{n}",
            "acct",
            "auto-renew",
            date(2027, 1, 4),
            -3,
            Kind.DEDUCT,
            amount=Decimal(fee),
            currency=currency,
        )
        for n, fee, currency in ((1, "120.00", "CNY"), (2, "9.5", "USD"))
    )
    assert [json.loads(encode(d) or "")["amount"] for d in (first, second)] == ["120.00", "9.5"]
    assert json.loads(encode(second) or "")["currency"] == "USD"
