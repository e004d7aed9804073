"""Synthetic snapshots for the benchmarks: seeded, N mailboxes, a realistic mix.

Expiry dates spread over a year around the reference day, 10% free, 40% auto-renew, about a
third of mailboxes in accounts shared by 2-4 mailboxes, both locales, some domains bought from
the provider. `python bench/generate.py --count 1000000 --out /tmp/s.csv`
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

HEADER = (
    "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,renewal_months,"
    "email,phone,locale,domain,domain_via_provider,domain_expires_on\n"
)
REFERENCE = date(2026, 12, 1)
PROGRESS_EVERY = 10_000  # rows


def generate(count: int, out: Path, seed: int = 42) -> None:
    """Write the snapshot; on a terminal, with a progress bar on stderr."""
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
        for written in _write(count, out, seed):
            progress.update(task, completed=written)


def _write(count: int, out: Path, seed: int) -> Iterator[int]:
    """Writes the rows; yields how many are written every PROGRESS_EVERY rows."""
    rng = random.Random(seed)
    days = [(REFERENCE + timedelta(days=offset)).isoformat() for offset in range(-60, 366)]
    with out.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER)
        account = 0
        left_in_account = 0
        balance = "0.00"
        for n in range(count):
            if left_in_account == 0:
                account += 1
                left_in_account = rng.choice((1, 1, 1, 1, 2, 3, 4))
                balance = (
                    f"{rng.choice((0, 50, 120, 240, 500, 1000, 2400))}.{rng.randrange(100):02d}"
                )
            left_in_account -= 1
            chinese = rng.random() < 0.5
            edition = (
                "free" if rng.random() < 0.10 else rng.choice(("basic", "standard", "enterprise"))
            )
            fee = "0.00" if edition == "free" else rng.choice(("60.00", "120.00", "600.00"))
            phone = (
                (
                    f"+86138{rng.randrange(10**8):08d}"
                    if chinese
                    else f"+1415555{rng.randrange(100, 200):04d}"
                )
                if rng.random() < 0.85
                else ""
            )
            domain, via, domain_day = "", "", ""
            if rng.random() < 0.25:
                domain = f"example-{n}.{'cn' if chinese else 'com'}"
                via = "true" if rng.random() < 0.5 else "false"
                domain_day = rng.choice(days)
            auto = "true" if rng.random() < 0.4 else "false"
            currency, tld, locale = ("CNY", "cn", "zh-CN") if chinese else ("USD", "com", "en")
            months = rng.choice((12, 12, 12, 1, 24))
            if n % PROGRESS_EVERY == 0:
                yield n
            handle.write(
                f"mb-{n:08d},acct-{account:07d},{edition},{rng.choice(days)},{auto},{balance},{fee},"
                f"{currency},{months},user{n}@example.{tld},{phone},{locale},{domain},{via},{domain_day}\n"
            )
        yield count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    generate(args.count, args.out, args.seed)


if __name__ == "__main__":
    main()
