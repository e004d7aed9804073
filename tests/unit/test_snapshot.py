"""The snapshot readers as a user meets them: good rows become Mailboxes, bad rows become errors
with the right line and field while the rest is still read, and non-snapshots are refused."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from renewd.core.errors import SnapshotError
from renewd.core.model import Mailbox
from renewd.snapshot import reader as reader_module
from renewd.snapshot import slow as slow_module
from renewd.snapshot import split as split_module
from renewd.snapshot.reader import KEPT_ERRORS, Snapshot, Wanted
from renewd.snapshot.rows import COLUMNS

EDITIONS = frozenset({"free", "basic", "standard", "enterprise"})
Row = dict[str, object]

GOOD: Row = {
    "mailbox_id": "mb-000001",
    "account_id": "acct-0001",
    "edition": "standard",
    "expires_on": "2027-03-15",
    "auto_renew": "true",
    "balance": "0.10",
    "renewal_fee": "120.00",
    "currency": "USD",
    "renewal_months": "24",
    "email": "user1@example.com",
    "phone": "+14155550123",
    "locale": "zh-CN",
    "domain": "example-1.com",
    "domain_via_provider": "yes",
    "domain_expires_on": "2027-01-31",
}

GOOD_MAILBOX = Mailbox(
    mailbox_id="mb-000001",
    account_id="acct-0001",
    edition="standard",
    expires_on=date(2027, 3, 15),
    auto_renew=True,
    balance=Decimal("0.10"),
    renewal_fee=Decimal("120.00"),
    currency="USD",
    renewal_months=24,
    email="user1@example.com",
    phone="+14155550123",
    locale="zh-CN",
    domain="example-1.com",
    domain_via_provider=True,
    domain_expires_on=date(2027, 1, 31),
    line=2,
)

# Only the required columns filled in: every optional one takes its default.
MINIMAL: Row = {
    "mailbox_id": "mb-000002",
    "account_id": "acct-0002",
    "edition": "free",
    "expires_on": "2026-12-31",
    "auto_renew": "0",
    "balance": "0",
    "renewal_fee": "0.00",
    "currency": "CNY",
    "email": "user2@example.cn",
}

MINIMAL_MAILBOX = Mailbox(
    mailbox_id="mb-000002",
    account_id="acct-0002",
    edition="free",
    expires_on=date(2026, 12, 31),
    auto_renew=False,
    balance=Decimal("0"),
    renewal_fee=Decimal("0.00"),
    currency="CNY",
    renewal_months=12,
    email="user2@example.cn",
    phone="",
    locale="en",
    domain="",
    domain_via_provider=False,
    domain_expires_on=None,
    line=2,
)


def row(mailbox_id: str, **changes: object) -> Row:
    """A valid row with another id (and email), changed as asked."""
    return {**GOOD, "mailbox_id": mailbox_id, "email": f"{mailbox_id}@example.com", **changes}


def csv_text(rows: list[Row], columns: tuple[str, ...] = COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for item in rows:
        writer.writerow(["" if item.get(c) is None else item.get(c) for c in columns])
    return buffer.getvalue()


def write(path: Path, rows: list[Row]) -> Path:
    """A snapshot in the format the suffix names. A lone surrogate such as "\\udcff" in a value
    is written as the raw byte it stands for (b"\\xff"): that is how a non-UTF-8 byte gets in."""
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in rows)
    else:
        text = csv_text(rows)
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return path


def read(path: Path) -> tuple[list[Mailbox], Snapshot]:
    snap = Snapshot(path, editions=EDITIONS, default_locale="en")
    return list(snap), snap


def ids(mailboxes: list[Mailbox]) -> list[str]:
    return [m.mailbox_id for m in mailboxes]


def physical_lines(value: str) -> int:
    """How many lines a (quoted) CSV value spans: csv counts the line where a row ends."""
    return len(re.split(r"\r\n|\r|\n", value))


# --- valid rows ---------------------------------------------------------------------------------

Raw = dict[str, str]  # field -> JSON text of its value, so 0.10 stays 0.10

JSON_GOOD_RAW: Raw = {
    "mailbox_id": '"mb-000001"',
    "account_id": '"acct-0001"',
    "edition": '"standard"',
    "expires_on": '"2027-03-15"',
    "auto_renew": "true",
    "balance": "0.10",
    "renewal_fee": "120.00",
    "currency": '"USD"',
    "renewal_months": "24",
    "email": '"user1@example.com"',
    "phone": '"+14155550123"',
    "locale": '"zh-CN"',
    "domain": '"example-1.com"',
    "domain_via_provider": "true",
    "domain_expires_on": '"2027-01-31"',
}
JSON_MINIMAL_RAW: Raw = {
    "mailbox_id": '"mb-000002"',
    "account_id": '"acct-0002"',
    "edition": '"free"',
    "expires_on": '"2026-12-31"',
    "auto_renew": "false",
    "balance": "0",
    "renewal_fee": "0.00",
    "currency": '"CNY"',
    "email": '"user2@example.cn"',
    "phone": "null",
    "locale": "null",
    "renewal_months": "null",
    "domain_via_provider": "null",
    "domain_expires_on": "null",
}


def json_line(raw: Raw, **changes: str) -> str:
    merged = {**raw, **changes}
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in merged.items()) + "}\n"


JSON_GOOD = json_line(JSON_GOOD_RAW)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        pytest.param("s.csv", csv_text([GOOD]), GOOD_MAILBOX, id="csv-all-columns"),
        pytest.param(
            "s.csv", csv_text([MINIMAL], tuple(MINIMAL)), MINIMAL_MAILBOX, id="csv-required-only"
        ),
        pytest.param(
            "s.csv", csv_text([{**MINIMAL, "phone": ""}]), MINIMAL_MAILBOX, id="csv-empty-optionals"
        ),
        pytest.param(
            "s.jsonl", JSON_GOOD, replace(GOOD_MAILBOX, line=1), id="jsonl-numbers-and-booleans"
        ),
        pytest.param("s.ndjson", JSON_GOOD, replace(GOOD_MAILBOX, line=1), id="ndjson-suffix"),
        pytest.param(
            "s.jsonl",
            json_line(JSON_MINIMAL_RAW),
            replace(MINIMAL_MAILBOX, line=1),
            id="jsonl-nulls-are-missing",
        ),
        pytest.param(
            "s.jsonl",
            "\n  \n" + JSON_GOOD,
            replace(GOOD_MAILBOX, line=3),
            id="jsonl-blank-lines-counted",
        ),
        pytest.param("s.csv", "\ufeff" + csv_text([GOOD]), GOOD_MAILBOX, id="csv-with-utf8-bom"),
        pytest.param("s.csv", csv_text([GOOD]).replace("\n", "\r\n"), GOOD_MAILBOX, id="csv-crlf"),
    ],
)
def test_valid_row_gives_the_expected_mailbox(
    tmp_path: Path, name: str, text: str, expected: Mailbox
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    mailboxes, snap = read(path)
    assert mailboxes == [expected]
    assert (snap.rows_read, snap.rejected, snap.errors, snap.duplicates) == (1, 0, [], set())


@pytest.mark.parametrize(
    ("json_money", "expected"),
    [("12.30", "12.30"), ("0.10", "0.10"), ("120", "120"), ("99999.999999", "99999.999999")],
)
def test_json_numbers_keep_exact_decimal_money(
    tmp_path: Path, json_money: str, expected: str
) -> None:
    text = json_line(JSON_GOOD_RAW, balance=json_money)
    path = tmp_path / "s.jsonl"
    path.write_text(text, encoding="utf-8")
    [mailbox], _ = read(path)
    assert isinstance(mailbox.balance, Decimal)
    assert str(mailbox.balance) == expected


@pytest.mark.parametrize(
    ("field", "value", "attribute", "expected"),
    [
        ("auto_renew", "TRUE", "auto_renew", True),
        ("auto_renew", "no", "auto_renew", False),
        ("auto_renew", "1", "auto_renew", True),
        ("domain_via_provider", "False", "domain_via_provider", False),
        ("renewal_months", "1", "renewal_months", 1),
        ("renewal_months", "120", "renewal_months", 120),
        ("balance", "1234567.891234", "balance", Decimal("1234567.891234")),
        ("phone", "+8613800138000", "phone", "+8613800138000"),
        ("locale", "en", "locale", "en"),
        (
            "email",
            "first.last+tag@mail.example.co.uk",
            "email",
            "first.last+tag@mail.example.co.uk",
        ),
        ("expires_on", "2028-02-29", "expires_on", date(2028, 2, 29)),
    ],
)
def test_accepted_spellings(
    tmp_path: Path, field: str, value: str, attribute: str, expected: object
) -> None:
    [mailbox], snap = read(write(tmp_path / "s.csv", [{**GOOD, field: value}]))
    assert getattr(mailbox, attribute) == expected
    assert snap.rejected == 0


# --- bad rows: rejected with line and field, neighbours still read -----------------------------

BAD_FIELDS = [
    # (field, bad value, words the reason must contain)
    ("expires_on", "2026-02-30", "not a calendar date"),
    ("expires_on", "2026/01/01", "not a date (YYYY-MM-DD)"),
    ("expires_on", "", "missing"),
    ("domain_expires_on", "2027-13-01", "not a calendar date"),
    ("balance", "-5", "negative"),
    ("balance", "abc", "not an amount"),
    ("balance", "1e5", "not an amount"),
    ("balance", "NaN", "not an amount"),
    ("balance", "12,30", "not an amount"),
    ("renewal_fee", "", "missing"),
    ("edition", "premium", "unknown edition 'premium'"),
    ("edition", "standrd", "did you mean 'standard'"),
    ("edition", "", "missing"),
    ("auto_renew", "maybe", "not true or false"),
    ("domain_via_provider", "y", "not true or false"),
    ("currency", "cny", "not a 3-letter currency code"),
    ("email", "a@b", "not an email address"),
    ("email", "x\r\ny@z.com", "control characters"),
    ("email", "a@example.com\nBcc: victim@example.org", "control characters"),
    ("email", "us\udcffer@example.com", "not UTF-8"),
    ("phone", "12345", "not an E.164 number"),
    ("phone", "+0123456789", "not an E.164 number"),
    ("renewal_months", "0", "not a whole number from 1 to 120"),
    ("renewal_months", "x", "not a whole number from 1 to 120"),
    ("renewal_months", "121", "not a whole number from 1 to 120"),
    ("mailbox_id", "m" * 129, "longer than 128 characters"),
    ("mailbox_id", "", "missing"),
    ("account_id", "acct-\x1b[31m", "control characters"),
    ("locale", "EN_us", "not a locale"),
    ("domain", "caf\udcff.example.com", "not UTF-8"),
    ("domain", '=HYPERLINK("http://evil.example","click")', "not a domain name"),
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
@pytest.mark.parametrize(
    ("field", "value", "words"),
    [pytest.param(*case, id=f"{case[0]}={case[1]!r:.30}") for case in BAD_FIELDS],
)
def test_bad_field_rejects_only_its_row(
    tmp_path: Path, suffix: str, field: str, value: str, words: str
) -> None:
    bad = {**row("mb-000002"), field: value}
    path = write(tmp_path / f"s{suffix}", [row("mb-000001"), bad, row("mb-000003")])
    mailboxes, snap = read(path)
    first = 2 if suffix == ".csv" else 1  # a CSV header is line 1
    bad_line = first + 1 + (physical_lines(value) - 1 if suffix == ".csv" else 0)
    assert ids(mailboxes) == ["mb-000001", "mb-000003"]
    assert [m.line for m in mailboxes] == [first, bad_line + 1]
    assert (snap.rows_read, snap.rejected) == (3, 1)
    [error] = snap.errors
    assert (error.path, error.line, error.field, error.mailbox_id) == (
        str(path),
        bad_line,
        field,
        bad["mailbox_id"],
    )
    assert words in error.reason
    assert str(error).startswith(f"{path}:{bad_line}: {field}: ")


def test_hostile_value_is_cut_short_in_the_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", [row("mb-000001", balance="9" * 200)])
    _, snap = read(path)
    [error] = snap.errors
    assert error.field == "balance"
    assert len(error.reason) < 100
    assert "..." in error.reason


@pytest.mark.parametrize(
    ("lines", "expected_ids", "expected_errors"),
    [
        pytest.param(
            ["mb-1,acct-1", "{good3}"],
            ["mb-000003"],
            [(2, f"expected {len(COLUMNS)} fields, found 2")],
            id="too-few-fields",
        ),
        pytest.param(
            ["{good2}", "{good2},extra", "{good4}"],
            ["mb-000002", "mb-000004"],
            [(3, f"expected {len(COLUMNS)} fields, found {len(COLUMNS) + 1}")],
            id="too-many-fields",
        ),
        pytest.param(
            ["{good2}", "", "{good4}"], ["mb-000002", "mb-000004"], [], id="blank-line-skipped"
        ),
    ],
)
def test_csv_rows_of_the_wrong_width(
    tmp_path: Path,
    lines: list[str],
    expected_ids: list[str],
    expected_errors: list[tuple[int, str]],
) -> None:
    good = {n: csv_text([row(f"mb-00000{n}")]).splitlines()[1] for n in range(1, 5)}
    body = [line.format(**{f"good{n}": text for n, text in good.items()}) for line in lines]
    path = tmp_path / "s.csv"
    path.write_text("\n".join([",".join(COLUMNS), *body]) + "\n", encoding="utf-8")
    mailboxes, snap = read(path)
    assert ids(mailboxes) == expected_ids
    assert [(e.line, e.reason) for e in snap.errors] == expected_errors
    assert all(e.field == "" for e in snap.errors)


def test_quoted_newline_shifts_the_following_line_numbers(tmp_path: Path) -> None:
    """An extra column the reader ignores may hold a multi-line note; rows still number right."""
    columns = (*COLUMNS, "note")
    rows = [
        {**row("mb-000001"), "note": "one line"},
        {**row("mb-000002"), "note": "first\nsecond\nthird"},  # lines 3-5
        {**row("mb-000003"), "note": ""},  # line 6
        {**row("mb-000004", email="x\ny@example.com"), "note": ""},  # lines 7-8
        {**row("mb-000005"), "note": ""},  # line 9
    ]
    path = tmp_path / "s.csv"
    path.write_text(csv_text(rows, columns), encoding="utf-8", newline="")
    mailboxes, snap = read(path)
    assert [(m.mailbox_id, m.line) for m in mailboxes] == [
        ("mb-000001", 2),
        ("mb-000002", 5),
        ("mb-000003", 6),
        ("mb-000005", 9),
    ]
    assert [(e.line, e.field, e.mailbox_id) for e in snap.errors] == [(8, "email", "mb-000004")]


def test_malformed_quoting_is_a_row_error(tmp_path: Path) -> None:
    good = csv_text([row("mb-000001"), row("mb-000003")]).splitlines()
    path = tmp_path / "s.csv"
    bad = 'mb-2,"acct"x",' + "," * (len(COLUMNS) - 2)
    path.write_text("\n".join([*good[:2], bad, good[2]]) + "\n")
    mailboxes, snap = read(path)
    assert ids(mailboxes) == ["mb-000001", "mb-000003"]
    assert [(e.line, e.field) for e in snap.errors] == [(3, "")]


# --- duplicates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_duplicate_mailbox_id_rejects_the_repeat(tmp_path: Path, suffix: str) -> None:
    rows = [
        row("mb-000001"),
        row("mb-000002"),
        row("mb-000001", expires_on="2027-06-01"),
        row("mb-000003"),
        row("mb-000001", balance="999.00"),
    ]
    _, snap = read(write(tmp_path / f"s{suffix}", rows))
    assert snap.duplicates == {"mb-000001"}
    assert snap.rejected == 2
    first = 2 if suffix == ".csv" else 1
    assert [(e.line, e.field, e.mailbox_id) for e in snap.errors] == [
        (first + 2, "mailbox_id", "mb-000001"),
        (first + 4, "mailbox_id", "mb-000001"),
    ]
    assert all("duplicate mailbox_id 'mb-000001'" in e.reason for e in snap.errors)


def test_rejected_row_still_claims_its_id(tmp_path: Path) -> None:
    """Two rows for one mailbox disagree, even if one of them is broken: neither is used."""
    rows = [row("mb-000001", balance="-1"), row("mb-000001")]
    _, snap = read(write(tmp_path / "s.csv", rows))
    assert snap.duplicates == {"mb-000001"}


# --- files that are not snapshots ----------------------------------------------------------------

HEADER_TYPO = ",".join(COLUMNS).replace("expires_on", "expire_on")

NOT_SNAPSHOTS = [
    # (file name, content, words the message must contain)
    ("empty.csv", b"", ["empty file"]),
    ("blank.csv", b"  \n\t\r\n\n", ["empty file"]),
    ("blank.jsonl", b"\n\n   \n", ["empty file"]),
    ("binary.csv", b"PK\x03\x04\x00\x00\x08\x00mailbox_id", ["binary data"]),
    ("utf16.csv", ",".join(COLUMNS).encode("utf-16"), ["binary data"]),
    ("binary.jsonl", b'{"a": 1}\n\x00\x00\x00', ["binary data"]),
    (
        "typo.csv",
        (HEADER_TYPO + "\n").encode(),
        [":1:", "missing column(s) expires_on", "'expire_on' (did you mean 'expires_on'?)"],
    ),
    (
        "few.csv",
        b"mailbox_id,email\nmb-1,a@example.com\n",
        ["missing column(s) account_id, edition, expires_on, auto_renew, balance"],
    ),
    ("prose.csv", b"Dear customer,\nyour mailbox\n", ["not a mailbox snapshot"]),
    ("json.csv", JSON_GOOD.encode(), ["not a mailbox snapshot", "missing column(s)"]),
    (
        "twice.csv",
        (",".join(COLUMNS) + ",email\n").encode(),
        [":1:", "column(s) named twice: email"],
    ),
    ("array.jsonl", b"[1, 2]\n" + JSON_GOOD.encode(), [":1:", "expected a JSON object per line"]),
    ("csv.jsonl", (",".join(COLUMNS) + "\n").encode(), [":1:", "expected a JSON object"]),
    ("late.jsonl", b"\n\n42\n", [":3:", "expected a JSON object per line"]),
]


@pytest.mark.parametrize(
    ("name", "content", "words"), [pytest.param(*case, id=case[0]) for case in NOT_SNAPSHOTS]
)
def test_not_a_snapshot_raises_before_any_row(
    tmp_path: Path, name: str, content: bytes, words: list[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    snap = Snapshot(path, editions=EDITIONS, default_locale="en")
    with pytest.raises(SnapshotError) as raised:
        next(iter(snap))
    message = str(raised.value)
    assert message.startswith(str(path))
    for word in words:
        assert word in message
    assert snap.rows_read == 0


def test_missing_file_is_a_snapshot_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(SnapshotError, match="cannot read") as raised:
        read(path)
    assert str(path) in str(raised.value)


def test_header_only_is_an_empty_snapshot(tmp_path: Path) -> None:
    mailboxes, snap = read(write(tmp_path / "s.csv", []))
    assert (mailboxes, snap.rows_read, snap.rejected) == ([], 0, 0)


# --- JSON Lines ---------------------------------------------------------------------------------


def test_jsonl_bad_line_in_the_middle(tmp_path: Path) -> None:
    good = [json.dumps(row(f"mb-00000{n}")) for n in (1, 3, 4, 5)]
    lines = [good[0], '{"mailbox_id": "mb-000002", ', good[1], "", "[1]", good[2], "null", good[3]]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    mailboxes, snap = read(path)
    assert [(m.mailbox_id, m.line) for m in mailboxes] == [
        ("mb-000001", 1),
        ("mb-000003", 3),
        ("mb-000004", 6),
        ("mb-000005", 8),
    ]
    assert [(e.line, e.field, e.reason) for e in snap.errors] == [
        (
            2,
            "",
            "not valid JSON: Expecting property name enclosed in double quotes at character 30",
        ),
        (5, "", "not a JSON object"),
        (7, "", "not a JSON object"),
    ]
    assert (snap.rows_read, snap.rejected) == (7, 3)


@pytest.mark.parametrize(
    ("field", "json_value", "attribute", "expected"),
    [
        ("auto_renew", "false", "auto_renew", False),
        ("auto_renew", '"true"', "auto_renew", True),
        ("domain_via_provider", "true", "domain_via_provider", True),
        ("renewal_months", "1", "renewal_months", 1),
        ("renewal_months", '"24"', "renewal_months", 24),
        ("balance", '"7.50"', "balance", Decimal("7.50")),
        ("balance", "0", "balance", Decimal("0")),
        ("phone", "null", "phone", ""),
        ("locale", "null", "locale", "en"),
        ("domain_expires_on", "null", "domain_expires_on", None),
        ("domain_via_provider", "null", "domain_via_provider", False),
        ("renewal_months", "null", "renewal_months", 12),
    ],
)
def test_jsonl_value_types(
    tmp_path: Path, field: str, json_value: str, attribute: str, expected: object
) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(json_line(JSON_GOOD_RAW, **{field: json_value}), encoding="utf-8")
    [mailbox], snap = read(path)
    assert getattr(mailbox, attribute) == expected
    assert snap.rejected == 0


@pytest.mark.parametrize(
    ("field", "json_value", "words"),
    [
        ("renewal_fee", "null", "missing"),
        ("expires_on", "null", "missing"),
        ("auto_renew", "null", "missing"),
        ("balance", "1e5", "not an amount"),
        ("balance", "-0.5", "negative"),
        ("balance", "NaN", "not an amount"),
        ("renewal_months", "12.0", "not a whole number"),
        ("auto_renew", "2", "not true or false"),
        ("email", '"x\\r\\ny@z.com"', "control characters"),
        ("expires_on", "20270315", "not a date"),
    ],
)
def test_jsonl_bad_values(tmp_path: Path, field: str, json_value: str, words: str) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        json_line(JSON_GOOD_RAW, **{field: json_value}) + json.dumps(row("mb-000002")) + "\n"
    )
    mailboxes, snap = read(path)
    assert ids(mailboxes) == ["mb-000002"]
    [error] = snap.errors
    assert (error.line, error.field, error.mailbox_id) == (1, field, "mb-000001")
    assert words in error.reason


# --- bounded error list ---------------------------------------------------------------------------


def test_errors_kept_are_bounded_but_all_are_counted(tmp_path: Path) -> None:
    bad = [row(f"mb-{n:06d}", balance="-1") for n in range(KEPT_ERRORS + 5)]
    rows = [row("mb-first"), *bad, row("mb-last")]
    mailboxes, snap = read(write(tmp_path / "s.csv", rows))
    assert ids(mailboxes) == ["mb-first", "mb-last"]
    assert len(snap.errors) == KEPT_ERRORS
    assert snap.rejected == KEPT_ERRORS + 5
    assert snap.rows_read == KEPT_ERRORS + 7
    assert (snap.errors[0].line, snap.errors[-1].line) == (3, KEPT_ERRORS + 2)


# --- inputs that once escaped as exceptions ------------------------------------------------------

HOSTILE = [
    pytest.param(
        "bom.csv",
        b"\xef\xbb\xbf",
        "SnapshotError",
        id="bom-only-csv-raises-RuntimeError",
    ),
    pytest.param(
        "months.csv",
        csv_text([row("mb-000001", renewal_months="\u00b2")]).encode(),
        "renewal_months",
        id="superscript-digit-months-raises-ValueError",
    ),
    pytest.param(
        "phone.csv",
        csv_text(
            [row("mb-000001", phone="+1\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661")]
        ).encode(),
        "phone",
        id="non-ascii-digits-accepted-in-phone",
    ),
    pytest.param(
        "deep.jsonl",
        b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "",
        id="deeply-nested-json-raises-RecursionError",
    ),
    pytest.param(
        "dup.csv",
        csv_text([row("mb-000001"), row("mb-000001", expires_on="2026-02-30")]).encode(),
        "duplicates",
        id="repeat-with-bad-field-not-flagged-duplicate",
    ),
]


@pytest.mark.parametrize(("name", "content", "field"), HOSTILE)
def test_hostile_input_is_reported_not_raised(
    tmp_path: Path, name: str, content: bytes, field: str
) -> None:
    """Each input must end as a SnapshotError or a row error, never as another exception."""
    path = tmp_path / name
    path.write_bytes(JSON_GOOD.encode() + content if name.endswith(".jsonl") else content)
    snap = Snapshot(path, editions=EDITIONS, default_locale="en")
    try:
        list(snap)
    except SnapshotError:
        return
    if field == "SnapshotError":
        pytest.fail("a file holding only a byte-order mark is empty, not a snapshot")
    if field == "duplicates":
        assert snap.duplicates == {"mb-000001"}
    else:
        assert [e.field for e in snap.errors] == [field]


# --- a big file read in two processes ------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_big_file_read_in_two_processes_reads_as_in_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str
) -> None:
    rows = [
        row(f"mb-{n:04d}", expires_on=f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}") for n in range(400)
    ]
    rows[50] = row("mb-0050", balance="-1")  # bad, before the cut
    rows[350] = row("mb-0350", currency="usd")  # bad, after it
    rows[380] = row("mb-0010")  # repeats an id from the other side
    text = "\ufeff" + csv_text(rows).replace("\n", newline)
    path = tmp_path / "s.csv"
    path.write_text(text, encoding="utf-8", newline="")
    wanted = Wanted(frozenset({"2026-03-03", "2026-11-11"}), today="2026-06-15")

    def scan(parallel_from: int) -> tuple[list[Mailbox], Snapshot]:
        monkeypatch.setattr(split_module, "PARALLEL_FROM", parallel_from)
        snap = Snapshot(path, editions=EDITIONS, default_locale="en")
        return list(snap.scan(wanted)), snap

    (one, single), (two, split) = scan(1 << 60), scan(0)
    with path.open("rb") as raw:
        assert split_module.split_point(raw.fileno(), quoted=True) is not None  # it really was cut
    assert two == one
    assert len(one) == 10  # 2026-03-03 and 2026-11-11, on both sides of the cut
    assert [(e.line, e.field) for e in split.errors] == [(e.line, e.field) for e in single.errors]
    assert [(e.line, e.field) for e in single.errors] == [
        (52, "balance"),
        (352, "currency"),
        (382, "mailbox_id"),
    ]
    for name in ("rows_read", "rejected", "expired", "duplicates", "rejected_ids"):
        assert getattr(split, name) == getattr(single, name), name
    assert single.expired > 100 and single.duplicates == {"mb-0010"}


def test_a_file_replaced_while_it_is_read_is_read_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exporters replace the file by renaming a new one over it: the scan, both halves of a
    big one included, and the second pass for repeated ids, must keep reading the old one."""
    monkeypatch.setattr(split_module, "PARALLEL_FROM", 0)
    rows = [row(f"mb-{n:04d}", expires_on="2026-03-03") for n in range(300)]
    rows[299] = row("mb-0000", expires_on="2026-03-03")  # a repeat: the second pass runs too
    path = write(tmp_path / "s.csv", rows)
    newer = write(tmp_path / "new.csv", [row(f"mb-{n:04d}", balance="555.50") for n in range(300)])
    cut = split_module.split_point

    def cut_then_replace(fd: int, quoted: bool) -> tuple[int, int] | None:
        where = cut(fd, quoted)
        os.replace(newer, path)  # after the file was opened, before either half is read
        return where

    monkeypatch.setattr(reader_module, "split_point", cut_then_replace)
    snap = Snapshot(path, editions=EDITIONS, default_locale="en")
    mailboxes = list(snap.scan(Wanted(frozenset({"2026-03-03"}))))
    assert len(mailboxes) == 300 and {m.balance for m in mailboxes} == {Decimal("0.10")}
    assert snap.duplicates == {"mb-0000"} and [e.line for e in snap.errors] == [301]


def test_a_repeated_id_is_reported_even_after_many_other_errors(tmp_path: Path) -> None:
    """Repeats are known only at the end: they must still take their place among the first
    KEPT_ERRORS errors by line."""
    rows = [row("mb-1"), row("mb-1")]
    rows += [row(f"mb-{n:06d}", balance="-1") for n in range(KEPT_ERRORS + 5)]
    _, snap = read(write(tmp_path / "s.csv", rows))
    assert len(snap.errors) == KEPT_ERRORS
    assert (snap.errors[0].line, snap.errors[0].field) == (3, "mailbox_id")
    assert snap.rejected == KEPT_ERRORS + 6


def test_a_last_line_without_line_end_is_as_long_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is added to the last line: a record of exactly MAX_RECORD characters is kept."""
    text = csv_text([row("mb-1", account_id='acct "one"')]).rstrip("\n")
    record = text.split("\n", 1)[1]
    monkeypatch.setattr(slow_module, "MAX_RECORD", len(record))
    path = tmp_path / "s.csv"
    path.write_text(text, encoding="utf-8")
    mailboxes, snap = read(path)
    assert [m.account_id for m in mailboxes] == ['acct "one"'] and snap.errors == []
