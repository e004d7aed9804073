"""What writing money and dates costs per call: Babel's `format_currency` and `format_date`
against `delivery.formats` (each locale and currency compiled once into a Shape, each date
cached), over amounts with every number of digits and a spread of currencies and locales.

A run formats about five amounts and five dates per message while it writes the plan, so at
39,000 messages (1M mailboxes) the difference is the figure times 200,000.

`python bench/formats.py [--n 200000] [--repeat 3]`
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency

from renewd.delivery.formats import babel_locale, formats_for

LOCALES = ("en", "en-GB", "zh-CN", "de", "fr", "ja", "ko", "hi", "ar")
CURRENCIES = ("CNY", "USD", "JPY", "KRW", "EUR", "INR", "BHD", "CHF", "GBP")


def best(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(17)
    money = [
        (
            Decimal(rng.randint(-(10**9), 10**12)).scaleb(-rng.randint(0, 3)),
            rng.choice(CURRENCIES),
            rng.choice(LOCALES),
        )
        for _ in range(args.n)
    ]
    days = [
        (date(2026, 1, 1) + timedelta(days=rng.randint(0, 730)), rng.choice(LOCALES))
        for _ in range(args.n)
    ]
    locales = {name: babel_locale(name) for name in LOCALES}
    formats = {name: formats_for(name, LOCALES, "en") for name in LOCALES}

    def babel_money() -> None:
        for amount, currency, locale in money:
            format_currency(amount, currency, locale=locales[locale], decimal_quantization=False)

    def renewd_money() -> None:
        for amount, currency, locale in money:
            formats[locale].money(amount, currency)

    def babel_dates() -> None:
        for day, locale in days:
            format_date(day, "long", locale=locales[locale])

    def renewd_dates() -> None:
        for day, locale in days:
            formats[locale].date(day)

    renewd_money()  # compile the shapes and fill the date cache, as a run's first messages do
    renewd_dates()
    print(f"{args.n:,} calls each, best of {args.repeat}; microseconds per call")
    print("| what | Babel | renewd | Babel/renewd |")
    print("| --- | ---: | ---: | ---: |")
    for what, slow, fast in (
        ("money", babel_money, renewd_money),
        ("date", babel_dates, renewd_dates),
    ):
        a, b = (best(call, args.repeat) / args.n * 1e6 for call in (slow, fast))
        print(f"| {what} | {a:.1f} | {b:.2f} | {a / b:.0f}x |")


if __name__ == "__main__":
    main()
