"""How money and dates read in a message: CLDR's formats, through Babel, for every locale.

An amount is never rounded: a currency is shown with its own minor units (JPY and KRW have none,
so `¥1,200`; `$1,200.00`), and an amount with more decimals than that shows them all (Babel's
`decimal_quantization=False`). Dates are CLDR's long form (`January 15, 2027`, `2027年1月15日`,
`15. Januar 2027`).

Babel's `format_currency` costs about 45 us a call, and a run formats five amounts for each of
tens of thousands of messages while it writes the plan. So each (locale, currency) is compiled
once into its `Shape` (the pattern's affixes with the symbol in place, the separators, the
grouping, the currency's digits), and an amount is laid into it: the steps of Babel's own
`NumberPattern.apply`, for the patterns CLDR gives currencies, plus CLDR's currency spacing,
which Babel lacks. A shape that needs more (a currency's plural name, a quote in an affix or
separator) is left to Babel. Tests compare the two over every ISO currency, a spread of locales
and random amounts.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
)

from renewd.delivery.gsm import gsm7

NBSP = "\u00a0"


def babel_locale(name: str) -> Locale | None:
    """The Babel locale for `en`, `zh-CN`, `zh_CN`, `de-DE`; None when CLDR has no data for it."""
    try:
        return Locale.parse(name.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class Shape:
    """A currency's amounts in one locale, as Babel lays them out."""

    prefix: tuple[str, str]  # (positive, negative), the currency symbol in place
    suffix: tuple[str, str]
    group: str
    decimal: str
    grouping: tuple[int, int]
    min_int: int
    digits: int  # the currency's minor units

    def __call__(self, amount: Decimal) -> str:
        """Babel's steps, shortened: the digits as Decimal writes them, trailing zeros past
        the currency's minor units dropped (normalize, then quantize to at least those)."""
        text = f"{amount:f}"
        negative = int(text[0] == "-")
        whole, _, fraction = text[negative:].partition(".")
        fraction = fraction.rstrip("0").ljust(self.digits, "0")
        number = self._integer(whole) + (self.decimal + fraction if fraction else "")
        return self.prefix[negative] + number + self.suffix[negative]

    def _integer(self, whole: str) -> str:
        whole = whole.rjust(self.min_int, "0")
        size, grouped = self.grouping[0], ""
        while len(whole) > size:
            grouped = self.group + whole[-size:] + grouped
            whole = whole[:-size]
            size = self.grouping[1]
        return whole + grouped


@functools.lru_cache(maxsize=1024)
def shape(locale: Locale, currency: str, code: bool = False) -> Shape | None:
    """The compiled shape (with the ISO code for a symbol when `code`), or None where only
    Babel itself gets it right.

    CLDR's currency spacing, which Babel leaves out, is applied: a symbol that ends (or starts)
    with a letter next to the digits is kept apart by a no-break space (`BHD 5.000`, not
    `BHD5.000`), as ICU writes it.
    """
    pattern = locale.currency_formats["standard"]
    symbol = currency.upper() if code else get_currency_symbol(currency, locale)
    group, decimal = get_group_symbol(locale), get_decimal_symbol(locale)
    affixes = (*pattern.prefix, *pattern.suffix)
    plain = (
        not pattern.exp_prec
        and "@" not in pattern.pattern
        and pattern.scale == 0
        and pattern.number_pattern != ""
        and not any("¤¤" in affix or "'" in affix for affix in affixes)
        and not any(c in "'¤" for c in group + decimal + symbol)
    )
    if not plain:
        return None

    def before(affix: str) -> str:
        spaced = affix.endswith("¤") and _apart(symbol[-1])
        return affix.replace("¤", symbol) + (NBSP if spaced else "")

    def after(affix: str) -> str:
        spaced = affix.startswith("¤") and _apart(symbol[0])
        return (NBSP if spaced else "") + affix.replace("¤", symbol)

    return Shape(
        prefix=(before(pattern.prefix[0]), before(pattern.prefix[1])),
        suffix=(after(pattern.suffix[0]), after(pattern.suffix[1])),
        group=group,
        decimal=decimal,
        grouping=pattern.grouping,
        min_int=pattern.int_prec[0],
        digits=get_currency_precision(currency),
    )


def _apart(char: str) -> bool:
    """CLDR's currencyMatch `[[:^S:]&[:^Z:]]`: neither a symbol nor a space."""
    return unicodedata.category(char)[0] not in "SZ"


MAX_KEPT = 8_192  # amounts and dates each Formats keeps written (beyond: written each time)


@dataclass(frozen=True)
class Formats:
    """How one message writes money and dates: `written` is the locale its templates are in,
    `locale` the CLDR locale its numbers and dates follow.

    Each keeps the amounts and dates it has written: a run writes about five amounts and five
    dates for each of tens of thousands of messages, mostly the same fees, zeros and days.
    """

    written: str
    locale: Locale
    _kept: dict[tuple[object, ...], str] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def money(self, amount: Decimal, currency: str, sms: bool = False) -> str:
        """The amount with its currency; in an SMS, a symbol GSM-7 lacks (`₩`, `₹`) is written
        as the ISO code instead (`KRW 1,200`), since one such character makes the whole message
        UCS-2, 70 characters a segment instead of 160."""
        key = (str(amount), currency, sms)  # by its digits: 1.10 is not written as 1.1
        written = self._kept.get(key)
        if written is None:
            written = self._money(amount, currency, sms)
            if len(self._kept) < MAX_KEPT:
                self._kept[key] = written
        return written

    def _money(self, amount: Decimal, currency: str, sms: bool) -> str:
        code = sms and not gsm7(get_currency_symbol(currency, self.locale))
        compiled = shape(self.locale, currency, code)
        if compiled is None:  # a rare pattern: Babel's answer, as it is
            return str(
                format_currency(amount, currency, locale=self.locale, decimal_quantization=False)
            )
        return compiled(amount)

    def date(self, day: date) -> str:
        key = (day,)
        written = self._kept.get(key)
        if written is None:
            written = _long_date(day, self.locale)
            if len(self._kept) < MAX_KEPT:
                self._kept[key] = written
        return written


@functools.lru_cache(maxsize=8192)
def _long_date(day: date, locale: Locale) -> str:
    return str(format_date(day, "long", locale=locale))


def written_in(row_locale: str, locales: tuple[str, ...], default: str) -> str:
    """The configured locale a row's messages are written in: its own, else one of the same
    language (`en-GB` is written in `en`), else the default. Case and `_` do not matter."""
    wanted = row_locale.replace("_", "-").lower()
    for locale in locales:
        if locale.lower() == wanted:
            return locale
    language = wanted.partition("-")[0]
    for locale in locales:
        if locale.lower().partition("-")[0] == language:
            return locale
    return default


@functools.lru_cache(maxsize=256)
def formats_for(row_locale: str, locales: tuple[str, ...], default: str) -> Formats:
    """A row's formats: written in `written_in`'s locale; numbers and dates follow the row's own
    locale when CLDR knows it and it is of the language written (an `en-GB` row reads
    `15 January 2027` in English text), else the written locale's (else English)."""
    written = written_in(row_locale, locales, default)
    target = babel_locale(written) or Locale("en")
    own = babel_locale(row_locale)
    if own is not None and own.language == target.language:
        target = own
    return Formats(written, target)
