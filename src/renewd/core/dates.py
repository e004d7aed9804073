"""Calendar arithmetic: months that keep their day."""

from __future__ import annotations

import calendar
from datetime import date
from functools import lru_cache


@lru_cache(maxsize=1 << 14)  # a simulation asks for the same few thousand dates millions of times
def add_months(day: date, months: int, anchor_day: int | None = None) -> date:
    """The day `months` later (earlier when negative) on the month's `anchor_day` (default: the
    day's own), clamped to the end of a shorter month.

    Anchored on the 31st, 2027-01-31 -> 02-28 -> 03-31 -> 04-30: a billing cycle keeps its day
    instead of drifting to the 28th after the first short month.
    """
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(anchor_day or day.day, calendar.monthrange(year, month)[1]))


def fits_anchor(day: date, anchor_day: int) -> bool:
    """Whether `day` can be a date of a cycle anchored on `anchor_day`: that day of its month, or
    the month's last day when the month is shorter (02-28 fits 29, 30 and 31)."""
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day == anchor_day or (day.day == last and anchor_day > last)
