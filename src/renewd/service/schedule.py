"""When the daily run is due: a pure function of the current time, so DST is tested with a table."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def run_time(day: date, run_at: time, zone: ZoneInfo) -> datetime:
    """`run_at` on `day` in `zone`, as a real instant.

    A time that happens twice (01:30 on a fall-back night) runs the first time; a time the clock
    skips (02:30 on a spring-forward night) runs when it would have without the change (03:30).
    """
    return datetime.combine(day, run_at, zone).astimezone(UTC).astimezone(zone)


def next_run(now: datetime, run_at: time, zone: ZoneInfo) -> datetime:
    """The first daily run at or after `now` (an aware datetime, in any zone)."""
    today = now.astimezone(zone).date()
    due = run_time(today, run_at, zone)
    return due if due >= now else run_time(today + timedelta(days=1), run_at, zone)
