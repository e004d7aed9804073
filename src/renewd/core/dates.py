"""Calendar arithmetic and how dates read in each locale."""

from __future__ import annotations

import calendar
from datetime import date


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the end of a shorter month (Jan 31 -> Feb 28)."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def format_date(day: date, locale: str) -> str:
    """2027年01月15日 for Chinese locales, 15 January 2027 otherwise (unambiguous everywhere)."""
    if locale.startswith("zh"):
        return f"{day.year}年{day.month:02d}月{day.day:02d}日"
    return f"{day.day} {calendar.month_name[day.month]} {day.year}"
