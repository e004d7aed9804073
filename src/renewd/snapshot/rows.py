"""One snapshot row's fields, validated: the precise way, which names the bad field and why."""

from __future__ import annotations

import csv
import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from renewd.core.errors import SnapshotError, suggest
from renewd.core.model import Mailbox

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
    "anchor_day",
)

COLUMNS = REQUIRED + OPTIONAL

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

# Unicode's control (Cc), format (Cf: bidi controls, zero-width characters, the BOM) and line and
# paragraph separators (Zl, Zp), as of Unicode 15; a test checks the running Python's tables.
# None of them belongs in an identifier or an address: they hide or reorder what an operator
# reads in a report, an export or a log line.
INVISIBLE = (
    "\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)

NOT_UTF8 = "\ud800-\udfff"  # bytes that are not UTF-8, kept as lone surrogates

_UNSAFE = re.compile(f"[{INVISIBLE}{NOT_UTF8}]")

_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class BadField(Exception):
    """Raised while converting a row; becomes a RowError."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def read_header(reader: Any, path: str) -> list[str]:
    try:
        header: list[str] = next(reader)
    except StopIteration:
        raise SnapshotError(f"{path}: empty file, not a snapshot") from None
    except csv.Error as exc:
        raise SnapshotError(f"{path}:1: unreadable header: {exc}") from exc
    check_header(header, path)
    return header


def check_header(header: list[str], path: str) -> None:
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
        anchor_day=_anchor_day(row),
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


def convert(row: dict[str, str], line: int, default_locale: str) -> Mailbox:
    """parse_row for a row the fast pattern accepted: every field is valid, only converted."""
    domain_day = row.get("domain_expires_on")
    return Mailbox(
        mailbox_id=row["mailbox_id"],
        account_id=row["account_id"],
        edition=row["edition"],
        expires_on=date.fromisoformat(row["expires_on"]),
        auto_renew=_BOOLS[row["auto_renew"].lower()],
        balance=Decimal(row["balance"]),
        renewal_fee=Decimal(row["renewal_fee"]),
        currency=row["currency"],
        renewal_months=int(row.get("renewal_months") or 12),
        anchor_day=int(row["anchor_day"]) if row.get("anchor_day") else None,
        email=row["email"],
        phone=row.get("phone", ""),
        locale=row.get("locale") or default_locale,
        domain=row.get("domain", ""),
        domain_via_provider=_BOOLS.get(row.get("domain_via_provider", "").lower(), False),
        domain_expires_on=date.fromisoformat(domain_day) if domain_day else None,
        line=line,
    )


def _text(row: dict[str, str], field: str, limit: int = 254, required: bool = True) -> str:
    value = row.get(field, "")
    if not value:
        if required:
            raise BadField(field, "missing")
        return ""
    unsafe = _UNSAFE.search(value)
    if unsafe:
        raise BadField(field, _unsafe(unsafe.group()))
    if len(value) > limit:
        raise BadField(field, f"longer than {limit} characters")
    return value


def _pattern(
    row: dict[str, str], field: str, pattern: re.Pattern[str], what: str, required: bool = True
) -> str:
    value = _text(row, field, required=required)
    if value and not pattern.fullmatch(value):
        raise BadField(field, f"{show(value)} is not {what}")
    return value


def _date(row: dict[str, str], field: str, required: bool = True) -> Any:
    value = _text(row, field, required=required)
    if not value:
        return None
    if not _DATE.fullmatch(value):
        raise BadField(field, f"{show(value)} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadField(field, f"{show(value)} is not a calendar date") from None


def _bool(row: dict[str, str], field: str, default: bool | None = None) -> bool:
    value = _text(row, field, required=default is None)
    if not value:
        return bool(default)
    try:
        return _BOOLS[value.lower()]
    except KeyError:
        raise BadField(field, f"{show(value)} is not true or false") from None


def _money(row: dict[str, str], field: str) -> Decimal:
    value = _text(row, field)
    if not _MONEY.fullmatch(value):
        raise BadField(field, f"{show(value)} is not an amount such as 120.00")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise BadField(field, f"{show(value)} is not an amount") from None
    if amount.is_signed():
        raise BadField(field, f"{value} is negative")
    return amount


def _anchor_day(row: dict[str, str]) -> int | None:
    """The day of the month the billing cycle is anchored on (renewals land on it, or on the last
    day of a shorter month); renewd ignores one that does not fit `expires_on`."""
    value = _text(row, "anchor_day", required=False)
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 31:
        raise BadField("anchor_day", f"{show(value)} is not a day of the month from 1 to 31")
    return int(value)


def _months(row: dict[str, str]) -> int:
    value = _text(row, "renewal_months", required=False)
    if not value:
        return 12
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 120:
        raise BadField("renewal_months", f"{show(value)} is not a whole number from 1 to 120")
    return int(value)


def _unsafe(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return "contains bytes that are not UTF-8"
    name = unicodedata.name(char, "")
    return (
        f"contains U+{ord(char):04X}{' ' + name if name else ''}: control characters and "
        "invisible format characters (bidi, zero-width) are not allowed"
    )


def show(value: str) -> str:
    """A value quoted for an error message, cut short so hostile input cannot flood the report."""
    return repr(value if len(value) <= 40 else value[:40] + "...")
