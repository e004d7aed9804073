"""Synthetic snapshots for the benchmarks: one seeded generator, every export format renewd reads.

`--dialect` picks the file: `plain` (this project's own export: expiry dates spread over a year,
10% free, 40% auto-renew, about a third of mailboxes in accounts shared by 2-4 mailboxes, both
locales, some optional columns empty), the same rows with `crlf` line ends, `quote-all` (every
field quoted, as `COPY ... CSV FORCE QUOTE *` and pandas' QUOTE_ALL write it), `quote-some` (text
quoted, numbers bare: QUOTE_NONNUMERIC), a UTF-8 `bom` (Excel's "CSV UTF-8"), `jsonl` (numbers and
booleans as JSON values, empty columns as null), and `independent`: data shaped by nobody who
knows the reader. Its columns are in another order with a display name added, every optional
column is filled, expiry dates spread over 20 months (leap day 2028-02-29 included), names and
some email addresses are not ASCII (some long, some with commas or quotes, a few over two lines),
money is written with 0 to 2 decimals, and bad rows are scattered through it: about one in 5,000
(a negative balance, 30 February, an unknown edition, a broken address), one repeated mailbox id
and one account whose mailboxes disagree on its balance. It is written by the csv module (CR LF).

`python bench/generate.py --count 1000000 --dialect independent --out /tmp/s.csv`
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

COLUMNS = [
    *("mailbox_id", "account_id", "edition", "expires_on", "auto_renew", "balance"),
    *("renewal_fee", "currency", "renewal_months", "email", "phone", "locale", "domain"),
    *("domain_via_provider", "domain_expires_on"),
]
REFERENCE = date(2026, 12, 1)
DIALECTS = ("plain", "crlf", "quote-all", "quote-some", "bom", "jsonl", "independent")
NUMBERS = {"balance", "renewal_fee", "renewal_months"}
FLAGS = {"auto_renew", "domain_via_provider"}
PROGRESS_EVERY = 10_000  # rows

Row = dict[str, str]


def generate(count: int, out: Path, seed: int = 42, dialect: str = "plain") -> None:
    rows = independent_rows(count, seed) if dialect == "independent" else plain_rows(count, seed)
    rows = _shown(rows, count, out)
    with out.open("w", encoding="utf-8-sig" if dialect == "bom" else "utf-8", newline="") as f:
        if dialect == "jsonl":
            f.writelines(json.dumps(_typed(row), ensure_ascii=False) + "\n" for row in rows)
            return
        if dialect == "independent":
            writer = csv.writer(f)  # CR LF, quotes only where needed
            writer.writerow(INDEPENDENT_COLUMNS)
            writer.writerows([row[c] for c in INDEPENDENT_COLUMNS] for row in rows)
            return
        if dialect in ("plain", "crlf", "bom"):  # none of these values needs quotes
            end = "\r\n" if dialect == "crlf" else "\n"
            f.write(",".join(COLUMNS) + end)
            f.writelines(",".join(row[c] for c in COLUMNS) + end for row in rows)
            return
        bare = set() if dialect == "quote-all" else NUMBERS
        f.write(",".join(f'"{c}"' for c in COLUMNS) + "\n")
        f.writelines(
            ",".join(row[c] if c in bare else f'"{row[c]}"' for c in COLUMNS) + "\n" for row in rows
        )


def _shown(rows: Iterator[Row], count: int, out: Path) -> Iterator[Row]:
    """The rows as they come, with a progress bar on stderr when it is a terminal."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task(f"writing {out}", total=count)
        for written, row in enumerate(rows, 1):
            yield row
            if written % PROGRESS_EVERY == 0:
                progress.update(task, completed=written)


def _typed(row: Row) -> dict[str, Any]:
    """A row as a JSON exporter writes it: numbers, booleans and null where they apply."""
    typed: dict[str, Any] = {}
    for column, text in row.items():
        if not text:
            typed[column] = None
        elif column in NUMBERS:
            typed[column] = int(text) if column == "renewal_months" else float(text)
        elif column in FLAGS:
            typed[column] = text == "true"
        else:
            typed[column] = text
    return typed


def plain_rows(count: int, seed: int) -> Iterator[Row]:
    rng = random.Random(seed)
    days = [(REFERENCE + timedelta(days=offset)).isoformat() for offset in range(-60, 366)]
    account = 0
    left_in_account = 0
    balance = "0.00"
    chinese = False
    for n in range(count):
        if left_in_account == 0:
            account += 1
            left_in_account = rng.choice((1, 1, 1, 1, 2, 3, 4))
            balance = f"{rng.choice((0, 50, 120, 240, 500, 1000, 2400))}.{rng.randrange(100):02d}"
            chinese = rng.random() < 0.5  # an account has one currency
        left_in_account -= 1
        edition = "free" if rng.random() < 0.10 else rng.choice(("basic", "standard", "enterprise"))
        fee = "0.00" if edition == "free" else rng.choice(("60.00", "120.00", "600.00"))
        phone = ""
        if rng.random() < 0.85:
            phone = (
                f"+86138{rng.randrange(10**8):08d}"
                if chinese
                else f"+1415555{rng.randrange(100, 200):04d}"
            )
        domain, via, domain_day = "", "", ""
        if rng.random() < 0.25:
            domain = f"example-{n}.{'cn' if chinese else 'com'}"
            via = "true" if rng.random() < 0.5 else "false"
            domain_day = rng.choice(days)
        auto = "true" if rng.random() < 0.4 else "false"
        currency, tld, locale = ("CNY", "cn", "zh-CN") if chinese else ("USD", "com", "en")
        months = str(rng.choice((12, 12, 12, 1, 24)))
        yield {
            "mailbox_id": f"mb-{n:08d}",
            "account_id": f"acct-{account:07d}",
            "edition": edition,
            "expires_on": rng.choice(days),
            "auto_renew": auto,
            "balance": balance,
            "renewal_fee": fee,
            "currency": currency,
            "renewal_months": months,
            "email": f"user{n}@example.{tld}",
            "phone": phone,
            "locale": locale,
            "domain": domain,
            "domain_via_provider": via,
            "domain_expires_on": domain_day,
        }


# --- the independent data ---------------------------------------------------------------------

INDEPENDENT_COLUMNS = [
    *("account_id", "mailbox_id", "display_name", "email", "edition", "renewal_months"),
    *("renewal_fee", "currency", "balance", "auto_renew", "expires_on", "phone", "locale"),
    *("domain", "domain_expires_on", "domain_via_provider"),
]
SURNAMES = ["王", "李", "张", "Müller", "García", "Nguyễn", "O'Brien", "Søren", "Łukasz", "Smith"]
GIVEN = ["伟", "芳", "娜", "José", "Zoë", "Ángel", "François", "Đức", "Анна", "أحمد", "Kim"]
LOCALES = ["en", "zh-CN", "en-GB", "de-DE", "fr", "ja-JP", "zh-Hant-TW"]
CURRENCIES = ["CNY", "USD", "EUR", "GBP", "JPY"]
TLDS = ["com", "cn", "co.uk", "de", "com.cn", "org"]
BAD_EVERY = 5000  # about one bad row in this many


def independent_rows(count: int, seed: int) -> Iterator[Row]:
    rng = random.Random(seed ^ 0x5EED)
    days = [(REFERENCE + timedelta(days=offset)).isoformat() for offset in range(-120, 480)]
    made = _accounts(rng, count)
    for n in range(count):
        account, balance, currency = next(made)
        row = _independent_row(rng, n, days, account, balance, currency)
        if n in (count // 3, count // 2):  # one mailbox exported twice
            row["mailbox_id"] = _mailbox_id(random.Random(seed + count // 3))
        elif rng.randrange(BAD_EVERY) == 0:
            _break(rng, row)
        yield row


def _accounts(rng: random.Random, count: int) -> Iterator[tuple[str, str, str]]:
    """(account, balance as written, currency) per mailbox: 1-4 mailboxes per account, one
    account's balance written differently in one row ("100.0" and "100.00" are the same amount),
    and one account whose rows really disagree."""
    number = 0
    while True:
        number += 1
        mailboxes = rng.choice((1, 1, 1, 1, 2, 3, 4))
        whole, cents = rng.choice((0, 35, 120, 600, 1000, 2400, 99999)), rng.randrange(100)
        balance = rng.choice((f"{whole}.{cents:02d}", f"{whole}", f"{whole}.{cents % 10}"))
        currency = rng.choice(CURRENCIES)
        account = f"ACC{number:08d}-{rng.choice(('cn', 'us', 'eu'))}"
        for index in range(mailboxes):
            written = balance
            if mailboxes > 1 and index == 1 and number == 7:
                written = f"{whole}.{cents:02d}0"  # the same amount, written differently
            elif mailboxes > 1 and index == 1 and number == count // 5:
                written = f"{whole + 1}.00"  # a real disagreement
            yield account, written, currency


def _mailbox_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(48):012x}"


def _independent_row(
    rng: random.Random, n: int, days: list[str], account: str, balance: str, currency: str
) -> Row:
    name = f"{rng.choice(GIVEN)} {rng.choice(SURNAMES)}"
    roll = rng.random()
    if roll < 0.02:
        name = f"{name}, {rng.choice(('Jr.', 'PhD', '经理'))}"  # a comma: quoted
    elif roll < 0.03:
        name = f'{name} "{rng.choice(GIVEN)}"'  # quotes, doubled when written
    elif roll < 0.04:
        name = " ".join(rng.choice(GIVEN + SURNAMES) for _ in range(rng.randrange(20, 60)))
    elif roll < 0.0401:
        name = f"{name}\n{rng.choice(SURNAMES)} GmbH"  # a value over two lines
    local = f"{rng.choice(('user', 'info', 'admin', 'x'))}{n}"
    if rng.random() < 0.02:
        local = f"{rng.choice(('josé', 'zoë', '王伟', 'søren'))}.{n}"
    elif rng.random() < 0.1:
        local += "+renewals"
    edition = rng.choice(("free", "basic", "basic", "standard", "standard", "enterprise"))
    fee = "0" if edition == "free" else rng.choice(("60", "120.00", "599.5", "1200.00"))
    tld = rng.choice(TLDS)
    return {
        "mailbox_id": _mailbox_id(rng),
        "account_id": account,
        "display_name": name,
        "email": f"{local}@mail.example-{n % 997}.{tld}",
        "edition": edition,
        "renewal_months": str(rng.choice((12, 12, 12, 1, 3, 6, 24, 36))),
        "renewal_fee": fee,
        "currency": currency,
        "balance": balance,
        "auto_renew": rng.choice(("true", "false", "TRUE", "False", "1", "0", "yes", "no")),
        "expires_on": rng.choice(days),
        "phone": f"+{rng.choice(('86138', '1415', '4420', '4930'))}{rng.randrange(10**7):07d}",
        "locale": rng.choice(LOCALES),
        "domain": f"shop-{n}.example.{tld}",
        "domain_expires_on": rng.choice(days),
        "domain_via_provider": rng.choice(("true", "false")),
    }


def _break(rng: random.Random, row: Row) -> None:
    field, value = rng.choice(
        (
            ("balance", "-12.00"),
            ("expires_on", "2027-02-30"),
            ("edition", "premium"),
            ("email", "not-an-address"),
            ("renewal_months", "0"),
        )
    )
    row[field] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dialect", choices=DIALECTS, default="plain")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    generate(args.count, args.out, args.seed, args.dialect)


if __name__ == "__main__":
    main()
