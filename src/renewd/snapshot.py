"""Streaming snapshot readers (CSV with a header, or JSON Lines), one validated Mailbox at a time.

A bad row is reported with its line, field and reason and skipped; the rest is still read. A
file that is not a snapshot at all raises SnapshotError before any row is yielded.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from renewd.errors import SnapshotError
from renewd.model import Mailbox, RowError
from renewd.yamlsrc import suggest

REQUIRED = (
    "mailbox_id",
    "account_id",
    "edition",
    "expires_on",
    "auto_renew",
    "balance",
    "renewal_fee",
    "currency",
    "email",
)
OPTIONAL = (
    "renewal_months",
    "phone",
    "locale",
    "domain",
    "domain_via_provider",
    "domain_expires_on",
)
COLUMNS = REQUIRED + OPTIONAL
KEPT_ERRORS = 1000
MAX_RECORD = 1 << 20  # characters; a longer record is rejected whole, never read in parts
csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD))

# re.ASCII everywhere: \d must not accept Arabic-Indic or fullwidth digits in a phone number.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_MONEY = re.compile(r"-?\d{1,15}(\.\d{1,6})?", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\.[A-Za-z]{2,63}")
_PHONE = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)
_LOCALE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
_DOMAIN = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


@dataclass(frozen=True)
class Wanted:
    """Which rows to build Mailboxes for: `expires_on` or `domain_expires_on` (as written) in
    these sets, or the id in `ids`. `expiry=None` means every row.
    """

    expiry: frozenset[str] | None = None
    domain: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    today: str = "0000-00-00"  # rows with expires_on on or before it are counted in `expired`

    def __call__(self, mailbox_id: str, expires_on: str, domain_expires_on: str) -> bool:
        if self.expiry is None or expires_on in self.expiry or mailbox_id in self.ids:
            return True
        return bool(domain_expires_on) and domain_expires_on in self.domain


_SAFE = r"[^,\x00-\x1f\x7f\ud800-\udfff]"
_BOOL_TEXT = r"(?i:true|false|1|0|yes|no)"
_DATE_TEXT = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
# One pattern per column, each accepting a subset of what parse_row accepts and never a comma,
# so that a whole row can be checked by one match of the fields joined with commas.
FAST = {
    "mailbox_id": _SAFE + "{1,128}",
    "account_id": _SAFE + "{1,128}",
    "expires_on": _DATE_TEXT,
    "auto_renew": _BOOL_TEXT,
    "balance": r"[0-9]{1,15}(?:\.[0-9]{1,6})?",
    "renewal_fee": r"[0-9]{1,15}(?:\.[0-9]{1,6})?",
    "currency": r"[A-Z]{3}",
    # lengths bounded so that no lookahead is needed to stay within the slow way's 254 and 253
    "email": r"[^@\s,\x00-\x1f\x7f\ud800-\udfff]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,120}[A-Za-z0-9])?\.[A-Za-z]{2,63}",
    "renewal_months": r"(?:120|1[01][0-9]|[1-9][0-9]?)?",
    "phone": r"(?:\+[1-9][0-9]{6,14})?",
    "locale": r"(?:[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)?",
    "domain": r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,59}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,63})?",
    "domain_via_provider": f"(?:{_BOOL_TEXT})?",
    "domain_expires_on": f"(?:{_DATE_TEXT})?",
}


class FastRows:
    """Checks a whole CSV row with one regular expression built for the file's header."""

    def __init__(self, header: list[str], editions: frozenset[str]) -> None:
        patterns = {**FAST, "edition": "|".join(re.escape(e) for e in sorted(editions)) or "(?!)"}
        captured = {"mailbox_id": "id", "expires_on": "expiry", "domain_expires_on": "domain"}
        fields = [
            f"(?P<{captured[name]}>{patterns[name]})"
            if name in captured
            else f"(?:{patterns.get(name, '[^,]*')})"
            for name in header
        ]
        absent = "" if "domain_expires_on" in header else "(?P<domain>)"
        self.pattern = re.compile(",".join(fields) + absent + r"\r?\n?")
        self._dates: dict[str, bool] = {"": True}

    def date(self, text: str) -> bool:
        """The pattern checks a date's shape; this checks it is a real day (not 2026-02-30)."""
        known = self._dates.get(text)
        if known is None:
            try:
                date.fromisoformat(text)
                known = True
            except ValueError:
                known = False
            self._dates[text] = known
        return known


class BadField(Exception):
    """Raised while converting a row; becomes a RowError."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class Snapshot:
    """One pass over a snapshot file. Iterate it for valid mailboxes; errors and counts accumulate.

    Rows that repeat a mailbox_id (valid or not) are rejected, and the id lands in `duplicates` so
    the caller can take no action at all for that mailbox: which row is right cannot be known.
    """

    def __init__(self, path: Path, editions: frozenset[str], default_locale: str) -> None:
        self.path = path
        self.editions = editions
        self.default_locale = default_locale
        self.rows_read = 0
        self.rejected = 0
        self.errors: list[RowError] = []
        self.duplicates: set[str] = set()
        self.rejected_ids: set[str] = set()
        self.expired = 0  # valid rows whose expires_on is on or before `Wanted.today`
        self._seen: set[str] = set()

    def __iter__(self) -> Iterator[Mailbox]:
        return self.scan()

    def scan(self, wanted: Wanted | None = None) -> Iterator[Mailbox]:
        """Validate every row; build (and yield) a Mailbox only for the rows `wanted` picks.

        Most rows of a big snapshot are nowhere near a step: a CSV line without quotes is checked
        by one regular expression over the raw line and never converted. Any other line goes the
        slow way (the csv module, then field by field), which gives the precise error; both ways
        accept exactly the same rows.
        """
        wanted = wanted or Wanted()
        with _open(self.path) as handle:
            if self.path.suffix.lower() in (".jsonl", ".ndjson"):
                yield from self._wanted(_jsonl_rows(handle, str(self.path)), wanted)
            else:
                yield from self._scan_csv(handle, wanted)

    def _scan_csv(self, handle: IO[str], wanted: Wanted) -> Iterator[Mailbox]:
        lines = iter(handle)
        header = _header(csv.reader(itertools.islice(lines, 1)), str(self.path))
        fast, seen = FastRows(header, self.editions), self._seen
        date_ok = fast.date
        match = fast.pattern.fullmatch
        expiry, domain, ids, today = wanted.expiry, wanted.domain, wanted.ids, wanted.today
        number = 1
        for text in lines:
            number += 1
            if '"' in text:
                number, rows = self._quoted(text, lines, number, header)
                yield from self._wanted(rows, wanted)
                continue
            found = match(text)
            if found is None:
                line = text.rstrip("\r\n")
                if line:
                    yield from self._wanted([(number, self._split(line, header, number))], wanted)
                continue
            mailbox_id, expires_on, domain_day = found.group("id", "expiry", "domain")
            if not (date_ok(expires_on) and date_ok(domain_day)):
                row = self._split(text.rstrip("\r\n"), header, number)
                yield from self._wanted([(number, row)], wanted)
                continue
            self.rows_read += 1
            if expires_on <= today:
                self.expired += 1
            if mailbox_id in seen:
                self._duplicate(number, mailbox_id)
                continue
            seen.add(mailbox_id)
            if expiry is None or expires_on in expiry or domain_day in domain or mailbox_id in ids:
                row = dict(zip(header, text.rstrip("\r\n").split(","), strict=True))
                yield parse_row(row, number, self.editions, self.default_locale)

    def _split(self, line: str, header: list[str], number: int) -> dict[str, str] | RowError:
        """A line without quotes is split on commas, exactly as the csv module would."""
        return self._fields(line.split(","), header, number)

    def _quoted(
        self, text: str, lines: Iterator[str], number: int, header: list[str]
    ) -> tuple[int, list[tuple[int, dict[str, str] | RowError]]]:
        """A line with quotes, with the lines its quoted fields run over, read by the csv module.

        The lines are gathered until the quotes balance, whatever the csv module would make of
        them, so no part of a quoted field can ever be read as a row of its own. Returns the
        number of the last line gathered and the rows found in them.
        """
        chunk, quotes, last, size = [text], text.count('"'), number, len(text)
        while quotes % 2:
            following = next(lines, None)
            if following is None:
                break
            chunk.append(following)
            last, quotes, size = last + 1, quotes + following.count('"'), size + len(following)
        if size > MAX_RECORD:
            return last, [
                (last, RowError(str(self.path), last, "", f"longer than {MAX_RECORD} characters"))
            ]
        rows: list[tuple[int, dict[str, str] | RowError]] = []
        reader = csv.reader(io.StringIO("".join(chunk), newline=""))
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return last, rows
            except csv.Error as exc:
                line = number + reader.line_num - 1
                rows.append((line, RowError(str(self.path), line, "", f"malformed CSV: {exc}")))
                continue
            line = number + reader.line_num - 1
            if values:
                rows.append((line, self._fields(values, header, line)))

    def _fields(self, values: list[str], header: list[str], line: int) -> dict[str, str] | RowError:
        if len(values) != len(header):
            return RowError(
                str(self.path), line, "", f"expected {len(header)} fields, found {len(values)}"
            )
        return dict(zip(header, values, strict=True))

    def _wanted(
        self, rows: Iterable[tuple[int, dict[str, str] | RowError]], wanted: Wanted
    ) -> Iterator[Mailbox]:
        """The slow way: every field converted, the first bad one reported."""
        for line, row in rows:
            self.rows_read += 1
            mailbox = self._mailbox(line, row)
            if mailbox is None:
                continue
            if mailbox.expires_on.isoformat() <= wanted.today:
                self.expired += 1
            domain = mailbox.domain_expires_on.isoformat() if mailbox.domain_expires_on else ""
            if wanted(mailbox.mailbox_id, mailbox.expires_on.isoformat(), domain):
                yield mailbox

    def _duplicate(self, line: int, mailbox_id: str) -> None:
        self.duplicates.add(mailbox_id)
        reason = f"duplicate mailbox_id {_show(mailbox_id)}: no action is taken for this mailbox"
        self._reject(RowError(str(self.path), line, "mailbox_id", reason, mailbox_id))

    def _mailbox(self, line: int, row: dict[str, str] | RowError) -> Mailbox | None:
        if isinstance(row, RowError):
            self._reject(row)
            return None
        mailbox_id = row.get("mailbox_id", "")
        if mailbox_id in self._seen:
            self._duplicate(line, mailbox_id)
            return None
        if mailbox_id:
            self._seen.add(mailbox_id)
        try:
            return parse_row(row, line, self.editions, self.default_locale)
        except BadField as bad:
            self._reject(RowError(str(self.path), line, bad.field, bad.reason, mailbox_id))
            return None

    def _reject(self, error: RowError) -> None:
        self.rejected += 1
        if error.mailbox_id:
            self.rejected_ids.add(error.mailbox_id)
        if len(self.errors) < KEPT_ERRORS:
            self.errors.append(error)


def _open(path: Path) -> IO[str]:
    """Open as UTF-8 text after ruling out files that are not snapshots at all.

    Undecodable bytes are kept as surrogates so that one bad row is reported, not the whole file.
    """
    try:
        with path.open("rb") as raw:
            head = raw.read(4096)
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from exc
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
        raise SnapshotError(f"{path}: empty file, not a snapshot")
    if b"\0" in head:
        raise SnapshotError(f"{path}: binary data, not a snapshot (expected CSV or JSON Lines)")
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def _header(reader: Any, path: str) -> list[str]:
    try:
        header: list[str] = next(reader)
    except StopIteration:
        raise SnapshotError(f"{path}: empty file, not a snapshot") from None
    except csv.Error as exc:
        raise SnapshotError(f"{path}:1: unreadable header: {exc}") from exc
    _check_header(header, path)
    return header


def _check_header(header: list[str], path: str) -> None:
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        unknown = [h for h in header if h not in COLUMNS]
        hints = "".join(f"; {h!r}{suggest(h, COLUMNS) or ' is unknown'}" for h in unknown[:5])
        raise SnapshotError(
            f"{path}:1: not a mailbox snapshot: missing column(s) {', '.join(missing)}{hints}"
        )
    doubled = {h for h in header if header.count(h) > 1}
    if doubled:
        raise SnapshotError(f"{path}:1: column(s) named twice: {', '.join(sorted(doubled))}")


def _jsonl_rows(handle: IO[str], path: str) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    first = True
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text, parse_float=Decimal)
            problem = "" if isinstance(value, dict) else "not a JSON object"
        except json.JSONDecodeError as exc:
            problem = f"not valid JSON: {exc.msg} at character {exc.pos + 1}"
        except (ValueError, RecursionError):
            problem = "not valid JSON: too deeply nested or malformed"
        if first and problem:
            raise SnapshotError(
                f"{path}:{line}: not a mailbox snapshot: expected a JSON object per line"
            )
        first = False
        if problem:
            yield line, RowError(path, line, "", problem)
            continue
        fields = {str(k): _json_text(v) for k, v in value.items()}
        bad = next((k for k, v in fields.items() if v is None), "")
        if bad:
            yield line, RowError(path, line, bad, "must be a string, number or boolean")
        else:
            yield line, {k: v or "" for k, v in fields.items()}


def _json_text(value: Any) -> str | None:
    """The field as CSV would give it; None for arrays and objects, which no column takes."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return None
    return value if isinstance(value, str) else str(value)


def parse_row(
    row: dict[str, str], line: int, editions: frozenset[str], default_locale: str
) -> Mailbox:
    """Convert one row's text fields into a Mailbox, or raise BadField naming the bad field."""
    edition = _text(row, "edition")
    if edition not in editions:
        raise BadField("edition", f"unknown edition {edition!r}{suggest(edition, editions)}")
    return Mailbox(
        mailbox_id=_text(row, "mailbox_id", limit=128),
        account_id=_text(row, "account_id", limit=128),
        edition=edition,
        expires_on=_date(row, "expires_on"),
        auto_renew=_bool(row, "auto_renew"),
        balance=_money(row, "balance"),
        renewal_fee=_money(row, "renewal_fee"),
        currency=_pattern(row, "currency", _CURRENCY, "a 3-letter currency code such as CNY"),
        renewal_months=_months(row),
        email=_pattern(row, "email", _EMAIL, "an email address"),
        phone=_pattern(
            row, "phone", _PHONE, "an E.164 number such as +8613800138000", required=False
        ),
        locale=_pattern(row, "locale", _LOCALE, "a locale such as en or zh-CN", required=False)
        or default_locale,
        domain=_pattern(row, "domain", _DOMAIN, "a domain name", required=False),
        domain_via_provider=_bool(row, "domain_via_provider", default=False),
        domain_expires_on=_date(row, "domain_expires_on", required=False),
        line=line,
    )


def _text(row: dict[str, str], field: str, limit: int = 254, required: bool = True) -> str:
    value = row.get(field, "")
    if not value:
        if required:
            raise BadField(field, "missing")
        return ""
    if _UNSAFE.search(value):
        raise BadField(field, "contains control characters or bytes that are not UTF-8")
    if len(value) > limit:
        raise BadField(field, f"longer than {limit} characters")
    return value


def _pattern(
    row: dict[str, str], field: str, pattern: re.Pattern[str], what: str, required: bool = True
) -> str:
    value = _text(row, field, required=required)
    if value and not pattern.fullmatch(value):
        raise BadField(field, f"{_show(value)} is not {what}")
    return value


def _date(row: dict[str, str], field: str, required: bool = True) -> Any:
    value = _text(row, field, required=required)
    if not value:
        return None
    if not _DATE.fullmatch(value):
        raise BadField(field, f"{_show(value)} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadField(field, f"{_show(value)} is not a calendar date") from None


def _bool(row: dict[str, str], field: str, default: bool | None = None) -> bool:
    value = _text(row, field, required=default is None)
    if not value:
        return bool(default)
    try:
        return _BOOLS[value.lower()]
    except KeyError:
        raise BadField(field, f"{_show(value)} is not true or false") from None


def _money(row: dict[str, str], field: str) -> Decimal:
    value = _text(row, field)
    if not _MONEY.fullmatch(value):
        raise BadField(field, f"{_show(value)} is not an amount such as 120.00")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise BadField(field, f"{_show(value)} is not an amount") from None
    if amount.is_signed():
        raise BadField(field, f"{value} is negative")
    return amount


def _months(row: dict[str, str]) -> int:
    value = _text(row, "renewal_months", required=False)
    if not value:
        return 12
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 120:
        raise BadField("renewal_months", f"{_show(value)} is not a whole number from 1 to 120")
    return int(value)


def _show(value: str) -> str:
    """A value quoted for an error message, cut short so hostile input cannot flood the report."""
    return repr(value if len(value) <= 40 else value[:40] + "...")
