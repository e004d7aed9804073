"""Generate the example mailbox snapshot (seeded, stdlib only).

    python examples/make_snapshot.py > examples/snapshot.csv
    python examples/make_snapshot.py --format jsonl > examples/snapshot.jsonl

On the reference date (2026-12-01) every shipped lifecycle rule fires for a few mailboxes; the
rest are spread over the year so that `renewd simulate` has something to do every week. Five
deliberately bad rows close the file, so the example also shows how rejected rows are reported.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TextIO

from renewd.snapshot.rows import COLUMNS

REFERENCE = date(2026, 12, 1)
CENT = Decimal("0.01")
# Price of one month, by currency and edition; 24-month terms get 10% off.
MONTHLY = {
    "USD": {"free": Decimal("0"), "basic": Decimal("3"), "standard": Decimal("6"),
            "enterprise": Decimal("15")},
    "CNY": {"free": Decimal("0"), "basic": Decimal("20"), "standard": Decimal("40"),
            "enterprise": Decimal("100")},
}  # fmt: skip
PAID = ("basic", "standard", "enterprise")

Row = dict[str, Any]


@dataclass
class Account:
    account_id: str
    locale: str
    balance: Decimal | None = None  # None: each mailbox picks its own (single-mailbox accounts)


@dataclass
class Maker:
    """Builds rows with plausible random values; the caller pins what a scenario needs."""

    rng: random.Random
    ref: date
    rows: list[Row] = field(default_factory=list)
    accounts: int = 0

    def account(self, locale: str | None = None, balance: Decimal | None = None) -> Account:
        self.accounts += 1
        chosen = locale or self.rng.choices(["en", "zh-CN"], weights=[6, 4])[0]
        return Account(f"acct-{self.accounts:04d}", chosen, balance)

    def add(
        self,
        days: int,
        *,
        account: Account | None = None,
        edition: str | None = None,
        auto_renew: bool | None = None,
        covers: bool | None = None,
        months: int | None = None,
        domain_days: int | None = None,
    ) -> Row:
        """One mailbox expiring `days` after the reference date (negative: already expired).

        `covers` pins whether the balance covers the fee; `domain_days` gives it a domain
        bought from us that expires that many days after the reference date.
        """
        rng = self.rng
        owner = account or self.account()
        kind = edition or rng.choices(["free", *PAID], weights=[12, 40, 33, 15])[0]
        term = months or rng.choices([12, 1, 24], weights=[80, 10, 10])[0]
        currency = "CNY" if owner.locale == "zh-CN" else "USD"
        fee = fee_for(currency, kind, term)
        row: Row = {
            "account": owner,
            "edition": kind,
            "expires_on": self.ref + timedelta(days=days),
            "auto_renew": kind != "free"
            and (auto_renew if auto_renew is not None else rng.random() < 0.5),
            "balance": owner.balance if owner.balance is not None else self.balance(fee, covers),
            "renewal_fee": fee,
            "currency": currency,
            "renewal_months": term,
            "phone": phone(rng, owner.locale) if rng.random() < 0.85 else "",
            "locale": owner.locale,
            "domain": domain_days is not None,
            "domain_days": domain_days,
        }
        if domain_days is None and rng.random() < 0.25:  # some own a domain; half bought it here
            row["domain"] = True
            row["domain_days"] = rng.randint(1, 400) if rng.random() < 0.5 else None
        self.rows.append(row)
        return row

    def balance(self, fee: Decimal, covers: bool | None) -> Decimal:
        if covers is None:
            covers = self.rng.random() < 0.6
        if fee == 0:
            return Decimal(self.rng.randint(0, 20)).quantize(CENT)
        ratio = self.rng.uniform(1.0, 3.0) if covers else self.rng.uniform(0.0, 0.95)
        return (fee * Decimal(f"{ratio:.2f}")).quantize(CENT)


def fee_for(currency: str, edition: str, months: int) -> Decimal:
    price = MONTHLY[currency][edition] * months
    return (price * Decimal("0.9") if months == 24 else price).quantize(CENT)


def phone(rng: random.Random, locale: str) -> str:
    """E.164 numbers of realistic length, from ranges reserved for fiction where there are any."""
    if locale == "zh-CN":
        return f"+86{rng.choice(['138', '139', '150', '186'])}{rng.randint(0, 99_999_999):08d}"
    if rng.random() < 0.7:
        return f"+1{rng.choice(['415', '212', '312', '206'])}55501{rng.randint(0, 99):02d}"
    return f"+447700900{rng.randint(0, 999):03d}"


# (rule that acts on the reference date, days to expiry, mailboxes per day, auto_renew, covers:
# whether the balance covers the fee; None leaves it to chance). Renewal reminders go to mailboxes
# without auto-renew, so no more specific rule supersedes them.
SCENARIOS: list[tuple[str, tuple[int, ...], int, bool | None, bool | None]] = [
    ("renewal-reminder", (30, 15, 7, 3, 1), 3, False, None),
    ("low-balance-warning", (7,), 4, True, False),
    ("auto-renew", (3,), 4, True, True),
    ("auto-renew-failed", (3,), 3, True, False),
    ("expired", (0,), 4, None, None),
    ("grace-reminder", (-7, -15, -25, -29), 2, None, None),
    ("deletion", (-30,), 3, None, None),
]
DOMAIN_DAYS = (30, 7, 0)  # domain-expiry: two mailboxes each


def scenarios(maker: Maker) -> None:
    """The mailboxes that make every shipped rule act on the reference date."""
    for _rule, days, each, auto_renew, covers in SCENARIOS:
        for day in days:
            for _ in range(each):
                maker.add(day, edition=paid(maker), auto_renew=auto_renew, covers=covers)
    for day in DOMAIN_DAYS:
        for _ in range(2):
            maker.add(spread(maker.rng), domain_days=day)
    # One balance that covers exactly one fee, two mailboxes auto-renewing on the same day:
    # the first (by id) is renewed, the second fails for lack of funds.
    shared = maker.account("en", balance=fee_for("USD", "standard", 12))
    for _ in range(2):
        maker.add(3, account=shared, edition="standard", auto_renew=True, months=12)


def paid(maker: Maker) -> str:
    return maker.rng.choice(PAID)


def spread(rng: random.Random) -> int:
    """Days from the reference date for an ordinary mailbox: mostly ahead, a few in grace."""
    return rng.randint(-20, 365)


def ordinary(maker: Maker, count: int) -> None:
    """The rest: spread over the year, with a few accounts that hold two or three mailboxes."""
    left = count
    while left > 0:
        size = maker.rng.choices([1, 2, 3], weights=[96, 2, 2])[0] if left > 3 else 1
        account = maker.account()
        if size > 1:
            account.balance = Decimal(maker.rng.randint(0, 400)).quantize(CENT)
        for _ in range(size):
            maker.add(spread(maker.rng), account=account)
        left -= size


def finish(rows: list[Row], ref: date) -> list[Row]:
    """Number the mailboxes in file order and spell every value as the snapshot wants it."""
    out = []
    for number, row in enumerate(rows, start=1):
        cn = row["locale"] == "zh-CN"
        domain_days = row["domain_days"]
        domain_expires = "" if domain_days is None else (ref + timedelta(days=domain_days))
        out.append(
            {
                "mailbox_id": f"mb-{number:06d}",
                "account_id": row["account"].account_id,
                "edition": row["edition"],
                "expires_on": row["expires_on"].isoformat(),
                "auto_renew": row["auto_renew"],
                "balance": f"{row['balance']:.2f}",
                "renewal_fee": f"{row['renewal_fee']:.2f}",
                "currency": row["currency"],
                "renewal_months": row["renewal_months"],
                "email": f"user{number}@example.{'cn' if cn else 'com'}",
                "phone": row["phone"],
                "locale": row["locale"],
                "domain": f"example-{number}.com" if row["domain"] else "",
                "domain_via_provider": domain_days is not None,
                "domain_expires_on": str(domain_expires),
            }
        )
    return out


def bad_rows(rows: list[Row]) -> list[Row]:
    """Five rows renewd must reject, each for a different reason."""
    template = rows[-1]
    start = len(rows) + 1
    changes: list[dict[str, Any]] = [
        {"expires_on": "2026-02-30"},
        {"balance": "-5.00"},
        {"edition": "premium"},
        {"phone": "8613800138000" if template["locale"] == "zh-CN" else "14155550123"},
        # Repeats the last good row's id (and account): which of the two is right is unknown.
        {"mailbox_id": template["mailbox_id"], "account_id": template["account_id"]},
    ]
    bad = []
    domain = template["email"].split("@")[1]
    for offset, change in enumerate(changes):
        number = start + offset
        row = {
            **template,
            "mailbox_id": f"mb-{number:06d}",
            "account_id": f"acct-{9000 + offset:04d}",
            "email": f"user{number}@{domain}",
        }
        bad.append({**row, **change})
    return bad


def generate(seed: int, count: int, ref: date) -> list[Row]:
    rng = random.Random(seed)  # noqa: S311 - reproducible example data, not secrets
    maker = Maker(rng, ref)
    scenarios(maker)
    special = len(maker.rows)
    if count < special:
        raise ValueError(f"--count must be at least {special} (the scenario mailboxes)")
    ordinary(maker, count - special)
    rows = maker.rows[:]
    rng.shuffle(rows)
    # The duplicate repeats the last good row: make that one a mailbox no rule touches on `ref`.
    last = max((i for i, row in enumerate(rows) if quiet(row, ref)), default=len(rows) - 1)
    rows.append(rows.pop(last))
    good = finish(rows, ref)
    return good + bad_rows(good)


def quiet(row: Row, ref: date) -> bool:
    return bool(row["expires_on"] > ref + timedelta(days=31) and row["domain_days"] is None)


def write_csv(rows: list[Row], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([text(row[c]) for c in COLUMNS])


def write_jsonl(rows: list[Row], out: TextIO) -> None:
    """Booleans and whole numbers as JSON values, money as strings, absent values as null."""
    for row in rows:
        record = {c: (None if row[c] == "" else row[c]) for c in COLUMNS}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    parser.add_argument("--count", type=int, default=300, help="valid rows (default: 300)")
    parser.add_argument(
        "--date",
        type=date.fromisoformat,
        default=REFERENCE,
        help=f"reference date on which every rule fires (default: {REFERENCE})",
    )
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    args = parser.parse_args(argv)
    try:
        rows = generate(args.seed, args.count, args.date)
    except ValueError as exc:
        parser.error(str(exc))
    (write_jsonl if args.format == "jsonl" else write_csv)(rows, sys.stdout)


if __name__ == "__main__":
    main()
