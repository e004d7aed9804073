"""What an SMS costs: the GSM-7 alphabet, segments, and the text as it is sent."""

from __future__ import annotations

import math

GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

# No-break spaces CLDR puts between an amount and its currency (`1.200,00 €`): in an SMS they
# become spaces, which GSM-7 has, so that they do not make the whole message UCS-2.
NO_BREAK = str.maketrans({"\u00a0": " ", "\u202f": " "})


def gsm7(text: str) -> bool:
    """Whether GSM-7 carries the text (one character outside it makes a message UCS-2)."""
    return all(c in GSM7 or c in GSM7_EXTENDED for c in text)


def sms_text(text: str) -> str:
    """An SMS as sent: no-break spaces become spaces."""
    return text.translate(NO_BREAK)


def sms_segments(text: str) -> int:
    """How many SMS a body costs: GSM-7 160 alone or 153 per part; otherwise UCS-2 70 or 67."""
    if gsm7(text):
        units = len(text) + sum(1 for c in text if c in GSM7_EXTENDED)
        return 1 if units <= 160 else math.ceil(units / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)
