"""One account, one balance: rows of an account that disagree on balance or currency are reported,
not rejected, however the file is read (in blocks of any size, in two processes, its claims on
disk or not)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_snapshot import EDITIONS, Row, csv_text, read, row, write

from renewd.snapshot import blocks, claims, split
from renewd.snapshot.reader import KEPT_ERRORS, Snapshot, Wanted


def account_row(mailbox_id: str, account: str, balance: str, currency: str = "CNY") -> Row:
    return row(mailbox_id, account_id=account, balance=balance, currency=currency)


@contextmanager
def cramped(block: int = 64, limit: int = 2) -> Iterator[None]:
    """Tiny blocks, claims on disk every `limit` rows, and any file read in two processes."""
    with (
        mock.patch.object(blocks, "BLOCK", block),
        mock.patch.object(claims, "LIMIT", limit),
        mock.patch.object(split, "PARALLEL_FROM", 0),
    ):
        yield


CASES = [
    pytest.param(
        [("100.0", "CNY"), ("100.00", "CNY"), ("100", "CNY")], [], id="same-amount-spelled-apart"
    ),
    pytest.param([("100.00", "CNY"), ("500.00", "CNY")], [(3, "balance")], id="balance"),
    pytest.param([("100.00", "CNY"), ("100.00", "USD")], [(3, "currency")], id="currency"),
    pytest.param(
        [("100.00", "CNY"), ("500.00", "USD")], [(3, "currency")], id="both-currency-first"
    ),
    pytest.param(
        [("100", "CNY"), ("500", "CNY"), ("100.0", "CNY"), ("7", "CNY")],
        [(3, "balance"), (5, "balance")],
        id="each-against-the-first",
    ),
]


@pytest.mark.parametrize(("money", "expected"), CASES)
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_rows_that_disagree_with_their_accounts_first_are_reported(
    tmp_path: Path, suffix: str, money: list[tuple[str, str]], expected: list[tuple[int, str]]
) -> None:
    rows = [account_row(f"mb-{n}", "acct-1", *pair) for n, pair in enumerate(money)]
    rows.append(account_row("mb-other", "acct-2", "9.99", "USD"))
    mailboxes, snap = read(write(tmp_path / f"s{suffix}", rows))
    shift = 0 if suffix == ".csv" else -1  # no header line
    assert [(c.line, c.field) for c in snap.conflicts] == [(n + shift, f) for n, f in expected]
    assert snap.conflicting_accounts == ({"acct-1"} if expected else set())
    assert len(mailboxes) == len(rows) and snap.rejected == 0 and not snap.rejected_ids


def test_the_reason_names_both_lines_and_what_happens(tmp_path: Path) -> None:
    rows = [account_row("mb-1", "acct-1", "100.00"), account_row("mb-2", "acct-1", "500.00")]
    _, snap = read(write(tmp_path / "s.csv", rows))
    [conflict] = snap.conflicts
    assert str(conflict) == (
        f"{tmp_path / 's.csv'}:3: balance: account 'acct-1' has balance 500.00 here but 100.00 "
        "on line 2: no deduction or balance message for this account today"
    )
    assert conflict.mailbox_id == "mb-2"


def test_rejected_rows_take_no_part(tmp_path: Path) -> None:
    """A row rejected for its own defect, or for repeating an id, says nothing of its account."""
    rows = [
        account_row("mb-1", "acct-1", "100.00"),
        {**account_row("mb-2", "acct-1", "500.00"), "edition": "premium"},
        account_row("mb-1", "acct-1", "600.00"),  # repeats mb-1: rejected
        account_row("mb-3", "acct-1", "100.0"),
    ]
    _, snap = read(write(tmp_path / "s.csv", rows))
    assert snap.conflicts == [] and snap.conflicting_accounts == set()
    assert [(e.line, e.field) for e in snap.errors] == [(3, "edition"), (4, "mailbox_id")]


def test_a_repeated_ids_first_row_still_counts(tmp_path: Path) -> None:
    rows = [
        account_row("mb-1", "acct-1", "100.00"),
        account_row("mb-2", "acct-1", "200.00"),
        account_row("mb-1", "acct-9", "1.00"),
    ]
    _, snap = read(write(tmp_path / "s.csv", rows))
    assert [(c.line, c.field) for c in snap.conflicts] == [(3, "balance")]
    assert snap.duplicates == {"mb-1"}


def test_json_numbers_and_strings_of_one_amount_agree(tmp_path: Path) -> None:
    lines = [
        {**account_row("mb-1", "acct-1", "x"), "balance": 100.5},
        account_row("mb-2", "acct-1", "100.50"),
        {**account_row("mb-3", "acct-1", "x"), "balance": 100},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    _, snap = read(path)
    assert [(c.line, c.field) for c in snap.conflicts] == [(3, "balance")]


def test_conflicts_kept_are_bounded_and_in_line_order(tmp_path: Path) -> None:
    rows = [account_row(f"mb-{n}", f"acct-{n % 3}", str(n)) for n in range(KEPT_ERRORS + 10)]
    with cramped(block=4096, limit=100):
        _, snap = read(write(tmp_path / "s.csv", rows))
    assert len(snap.conflicts) == KEPT_ERRORS
    assert [c.line for c in snap.conflicts] == list(range(5, KEPT_ERRORS + 5))
    assert snap.conflicting_accounts == {"acct-0", "acct-1", "acct-2"}


def test_a_selective_scan_still_checks_every_row(tmp_path: Path) -> None:
    """dry-run builds Mailboxes only near a step; the accounts of all rows are still compared."""
    rows = [account_row(f"mb-{n}", "acct-1", "100.00") for n in range(300)]
    rows[250] = account_row("mb-250", "acct-1", "1.00", "USD")
    path = write(tmp_path / "s.csv", rows)
    with cramped():
        snap = Snapshot(path, EDITIONS, "en")
        assert list(snap.scan(Wanted(frozenset({"2030-01-01"})))) == []
    assert [(c.line, c.field) for c in snap.conflicts] == [(252, "currency")]


# --- a property: any mix of accounts, amounts and currencies, read any way ----------------------

AMOUNTS = ["100", "100.0", "100.00", "50.5", "50.50", "0", "0.00"]


@st.composite
def account_rows(draw: st.DrawFn) -> list[Row]:
    count = draw(st.integers(1, 40))
    return [
        account_row(
            f"mb-{n}",
            draw(st.sampled_from(["acct-1", "acct-2", "acct-3", "ACCT-1"])),
            draw(st.sampled_from(AMOUNTS)),
            draw(st.sampled_from(["CNY", "CNY", "CNY", "USD"])),
        )
        for n in range(count)
    ]


def model(rows: list[Row]) -> list[tuple[int, str]]:
    first: dict[object, tuple[Decimal, object]] = {}
    found = []
    for line, item in enumerate(rows, start=2):
        money = (Decimal(str(item["balance"])), item["currency"])
        model_money = first.setdefault(item["account_id"], money)
        if money != model_money:
            found.append((line, "currency" if money[1] != model_money[1] else "balance"))
    return found


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=account_rows(), block=st.integers(1, 300), limit=st.integers(1, 8))
def test_conflicts_are_exactly_the_rows_that_disagree(
    tmp_path: Path, rows: list[Row], block: int, limit: int
) -> None:
    path = tmp_path / "s.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    with cramped(block, limit):
        snap = Snapshot(path, EDITIONS, "en")
        list(snap.scan(Wanted(frozenset())))
    expected = model(rows)
    assert [(c.line, c.field) for c in snap.conflicts] == expected
    assert snap.conflicting_accounts == {rows[line - 2]["account_id"] for line, _ in expected}
