"""Money and dates in messages are CLDR's, through Babel, in every locale; currencies are ISO's."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from babel import Locale
from babel.core import get_global
from babel.numbers import format_currency, get_currency_symbol, get_territory_currencies
from hypothesis import given, settings
from hypothesis import strategies as st

from renewd.config.model import MessageSettings
from renewd.delivery.formats import babel_locale, formats_for, shape, written_in
from renewd.delivery.gsm import sms_segments, sms_text
from renewd.delivery.messages import sample_decision, sample_mailbox, variables
from renewd.delivery.templating import PARTS, SHIPPED, Renderer
from renewd.policy.loader import load_policy, policy_files
from renewd.snapshot.currencies import ISO_4217, pattern

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(policy_files(ROOT / "rules"))
LOCALES = ("en", "zh-CN", "de")
CURRENCIES = ("CNY", "USD", "JPY", "KRW", "EUR")
NBSP = "\u00a0"

# A fee of 1,200 as CLDR writes it: JPY and KRW have no minor units; German puts the symbol after
# the amount, behind a no-break space.
FEE = {
    ("CNY", "en"): "CN¥1,200.00",
    ("USD", "en"): "$1,200.00",
    ("JPY", "en"): "¥1,200",
    ("KRW", "en"): "₩1,200",
    ("EUR", "en"): "€1,200.00",
    ("CNY", "zh-CN"): "¥1,200.00",
    ("USD", "zh-CN"): "US$1,200.00",
    ("JPY", "zh-CN"): "JP¥1,200",
    ("KRW", "zh-CN"): "₩1,200",
    ("EUR", "zh-CN"): "€1,200.00",
    ("CNY", "de"): f"1.200,00{NBSP}CN¥",
    ("USD", "de"): f"1.200,00{NBSP}$",
    ("JPY", "de"): f"1.200{NBSP}¥",
    ("KRW", "de"): f"1.200{NBSP}₩",
    ("EUR", "de"): f"1.200,00{NBSP}€",
}
# An SMS writes a symbol GSM-7 lacks as the ISO code, so that it stays GSM-7 (160 a segment).
SMS_FEE = {("KRW", "en"): f"KRW{NBSP}1,200", ("KRW", "zh-CN"): f"KRW{NBSP}1,200"}
SMS_FEE[("KRW", "de")] = f"1.200{NBSP}KRW"
EXPIRES = {"en": "January 31, 2027", "zh-CN": "2027年1月31日", "de": "31. Januar 2027"}
TEMPLATES = sorted(p.name for p in (SHIPPED / "en").iterdir() if p.is_dir())


def rendered(currency: str, locale: str, template: str, part: str) -> tuple[str, str]:
    """(the part's source, what it renders to) for a sample mailbox of this currency."""
    box = replace(sample_mailbox(locale), currency=currency)
    rule = next((r for r in POLICY.rules if r.template == template), POLICY.rules[0])
    formats = formats_for(locale, LOCALES, "en")
    channel = "sms" if part == "sms.txt" else "email"
    decision = replace(sample_decision(rule, box), channel=channel)
    values = variables(box, decision, POLICY, MessageSettings(), False, formats)
    text = Renderer(None, "en").part(locale, template, part, values)
    return (SHIPPED / locale / template / part).read_text(), text


@pytest.mark.parametrize(("currency", "locale"), sorted(FEE))
def test_every_shipped_template_writes_money_and_dates_as_cldr_does(
    currency: str, locale: str
) -> None:
    fee, expires = FEE[currency, locale], EXPIRES[locale]
    for template in TEMPLATES:
        for part in (*PARTS["email"], *PARTS["sms"]):
            source, text = rendered(currency, locale, template, part)
            where = (template, part)
            if part == "sms.txt":
                text = sms_text(text)
                assert NBSP not in text, where
                assert sms_segments(text) <= 3, where
                fee_shown = SMS_FEE.get((currency, locale), fee).replace(NBSP, " ")
            else:
                fee_shown = fee
            if "{{ fee" in source:
                assert fee_shown in text, where
            if "{{ expires_on" in source:
                assert expires in text, where
            if currency in ("JPY", "KRW"):  # no minor units, so never a .00 or ,00
                assert not re.search(r"1[,.]200[.,]\d", text), where
            assert "{{" not in text and "None" not in text, where


def test_a_mailbox_in_each_locale_gets_the_same_layout_in_its_language() -> None:
    for locale, lang in (("en", "en"), ("zh-CN", "zh-CN"), ("de", "de")):
        for template in TEMPLATES:
            _, html = rendered("EUR", locale, template, "body.html")
            assert html.startswith(f'<!DOCTYPE html>\n<html lang="{lang}">'), template
            assert html.endswith("</body>\n</html>"), template


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        ("1200.5", "JPY", "en", "¥1,200.5"),  # more digits than the currency has: never rounded
        ("0.125", "USD", "en", "$0.125"),
        ("-5", "USD", "en", "-$5.00"),
        ("15000", "KRW", "ko", "₩15,000"),
        ("1234567.891", "INR", "hi", "₹12,34,567.891"),  # Indian grouping
        ("1234.5", "CHF", "de-CH", f"CHF{NBSP}1'234.50"),  # Babel's own: its group is a quote
        ("0", "BHD", "en", f"BHD{NBSP}0.000"),  # three minor units; CLDR's currency spacing
        ("0", "XCG", "en", f"Cg.{NBSP}0.00"),  # a symbol ending in punctuation is kept apart too
        ("1200", "CNY", "zh-CN", "¥1,200.00"),
        ("1200", "EUR", "fr", "1\u202f200,00\u00a0€"),
    ],
)
def test_money_reads_as_cldr_says(amount: str, currency: str, locale: str, shown: str) -> None:
    formats = formats_for(locale, (locale,), locale)
    assert formats.money(Decimal(amount), currency) == shown


LOCALE_SAMPLE = [
    "en", "en_GB", "en_IN", "zh_Hans_CN", "zh_Hant_TW", "de", "de_CH", "fr", "fr_CH", "es", "pt",
    "it", "nl", "sv", "fi", "pl", "ru", "uk", "tr", "ar", "ar_EG", "fa", "he", "hi", "bn", "ja",
    "ko", "th", "vi", "id", "ms", "sw", "am", "ka", "km", "my", "ne", "ur", "ps", "eu", "gsw",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(LOCALE_SAMPLE),
    st.sampled_from(sorted(ISO_4217)),
    st.integers(-(10**15), 10**15),
    st.integers(0, 6),
)
def test_the_compiled_shape_is_babels_own_answer(
    name: str, currency: str, digits: int, places: int
) -> None:
    """The fast path lays amounts exactly as format_currency(decimal_quantization=False)."""
    amount = Decimal(digits).scaleb(-places)
    locale = Locale.parse(name)
    expected = spaced(
        locale,
        currency,
        format_currency(amount, currency, locale=locale, decimal_quantization=False),
    )
    compiled = shape(locale, currency)
    assert compiled is None or compiled(amount) == expected
    assert formats_for(name, (name,), name).money(amount, currency) == expected


@pytest.mark.parametrize("name", LOCALE_SAMPLE)
def test_every_currency_in_each_locale_is_babels_answer(name: str) -> None:
    """Not left to chance: every currency of the set, a few amounts of every shape."""
    locale = Locale.parse(name)
    for currency in sorted(ISO_4217):
        for amount in map(Decimal, ("0", "0.5", "12", "-1234567.891")):
            babel = format_currency(amount, currency, locale=locale, decimal_quantization=False)
            shown = formats_for(name, (name,), name).money(amount, currency)
            assert shown == spaced(locale, currency, babel), (currency, str(amount))


def spaced(locale: Locale, currency: str, text: str) -> str:
    """Babel's answer with CLDR's currency spacing, which Babel leaves out: a no-break space
    between a digit and the symbol's end next to it when that end is neither a symbol nor a
    space (currencyMatch `[[:^S:]&[:^Z:]]`): Babel writes `BHD5.000` and `Cg.0.00`, CLDR and
    ICU `BHD 5.000` and `Cg. 0.00`; `$5.00` and `5,00 €` stay as they are."""
    symbol = get_currency_symbol(currency, locale)

    def apart(char: str) -> bool:
        return unicodedata.category(char)[0] not in "SZ"

    if apart(symbol[-1]):
        text = re.sub(rf"(?<={re.escape(symbol)})(?=\d)", NBSP, text, count=1)
    if apart(symbol[0]):
        text = re.sub(rf"(?<=\d)(?={re.escape(symbol)})", NBSP, text, count=1)
    return text


@pytest.mark.parametrize(
    ("row", "written"),
    [
        ("de", "de"),
        ("DE", "de"),
        ("zh_CN", "zh-CN"),
        ("zh-cn", "zh-CN"),
        ("zh-TW", "zh-CN"),  # the same language: written in the one configured
        ("en-GB", "en"),
        ("fr", "en"),  # not configured: the default
        ("xx-YY", "en"),
    ],
)
def test_a_row_is_written_in_a_configured_locale(row: str, written: str) -> None:
    assert written_in(row, LOCALES, "en") == written


def test_dates_follow_the_rows_own_locale_within_its_language() -> None:
    day = date(2027, 1, 15)
    assert formats_for("en", LOCALES, "en").date(day) == "January 15, 2027"
    assert formats_for("en-GB", LOCALES, "en").date(day) == "15 January 2027"
    assert formats_for("zh-CN", LOCALES, "en").date(day) == "2027年1月15日"
    assert formats_for("de-AT", LOCALES, "en").date(day) == "15. Jänner 2027"
    assert formats_for("fr", LOCALES, "en").date(day) == "January 15, 2027"  # written in en
    assert babel_locale("not a locale") is None


def test_the_currencies_are_those_cldr_calls_legal_tender() -> None:
    """The reader's literal set is CLDR's view of ISO 4217 currencies in use (on a fixed day)."""
    tender: set[str] = set()
    for territory in get_global("territory_currencies"):
        tender.update(get_territory_currencies(territory, date(2026, 12, 1), tender=True))
    assert tender == ISO_4217
    assert {"JPY", "KRW", "CNY", "USD", "EUR"} <= ISO_4217
    assert not {"XTS", "XXX", "XAU", "XDR", "CNH", "DEM", "HRK"} & ISO_4217


def test_the_fast_patterns_currency_alternative_is_the_same_set() -> None:
    matcher = re.compile(pattern())
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = {a + b + c for a in letters for b in letters for c in letters}
    assert {code for code in codes if matcher.fullmatch(code)} == ISO_4217


def test_an_sms_writes_a_symbol_gsm7_lacks_as_the_iso_code() -> None:
    formats = formats_for("en", LOCALES, "en")
    assert formats.money(Decimal(1200), "KRW") == "₩1,200"
    assert formats.money(Decimal(1200), "KRW", sms=True) == f"KRW{NBSP}1,200"
    assert formats.money(Decimal(1200), "INR", sms=True) == f"INR{NBSP}1,200.00"
    assert formats.money(Decimal(1200), "EUR", sms=True) == "€1,200.00"  # GSM-7 has €
    assert formats.money(Decimal(1200), "JPY", sms=True) == "¥1,200"


def test_sms_spaces_are_gsm7() -> None:
    variables_ = {"fee": f"1.200,00{NBSP}€"}
    assert sms_segments(sms_text(f"Gebühr {variables_['fee']}")) == 1
    assert sms_segments(f"Gebühr {variables_['fee']}") == 1  # one UCS-2 segment: 70 chars
    long = "Gebühr " * 15 + variables_["fee"]
    assert sms_segments(sms_text(long)) == 1 and sms_segments(long) == 2
