"""The daily schedule as a pure function of the time: a table, DST nights included."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from renewd.service.schedule import next_run

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")

CASES = [
    # (zone, run_at, now, next run)
    (SHANGHAI, "02:00", "2026-12-01T01:59:59+08:00", "2026-12-01T02:00:00+08:00"),
    (SHANGHAI, "02:00", "2026-12-01T02:00:00+08:00", "2026-12-01T02:00:00+08:00"),
    (SHANGHAI, "02:00", "2026-12-01T02:00:01+08:00", "2026-12-02T02:00:00+08:00"),
    (
        SHANGHAI,
        "02:00",
        "2026-11-30T17:30:00+00:00",
        "2026-12-01T02:00:00+08:00",
    ),  # now given in UTC
    (SHANGHAI, "00:00", "2026-12-31T23:00:00+08:00", "2027-01-01T00:00:00+08:00"),
    # spring forward, 2027-03-14: 02:00-03:00 does not exist
    (NEW_YORK, "02:30", "2027-03-14T00:00:00-05:00", "2027-03-14T03:30:00-04:00"),
    (NEW_YORK, "03:30", "2027-03-14T00:00:00-05:00", "2027-03-14T03:30:00-04:00"),
    (NEW_YORK, "02:30", "2027-03-13T12:00:00-05:00", "2027-03-14T03:30:00-04:00"),
    (NEW_YORK, "02:30", "2027-03-14T04:00:00-04:00", "2027-03-15T02:30:00-04:00"),
    # fall back, 2027-11-07: 01:00-02:00 happens twice; the run is once, the first time
    (NEW_YORK, "01:30", "2027-11-07T00:00:00-04:00", "2027-11-07T01:30:00-04:00"),
    (NEW_YORK, "01:30", "2027-11-07T01:40:00-04:00", "2027-11-08T01:30:00-05:00"),
    (NEW_YORK, "01:30", "2027-11-07T01:10:00-05:00", "2027-11-08T01:30:00-05:00"),
    (NEW_YORK, "02:30", "2027-11-07T01:40:00-05:00", "2027-11-07T02:30:00-05:00"),
]


@pytest.mark.parametrize(("zone", "run_at", "now", "expected"), CASES)
def test_next_run(zone: ZoneInfo, run_at: str, now: str, expected: str) -> None:
    due = next_run(datetime.fromisoformat(now), time.fromisoformat(run_at), zone)
    wanted = datetime.fromisoformat(expected)
    # Compared as UTC instants: Python never equates an ambiguous local time across zones.
    assert due.astimezone(UTC) == wanted.astimezone(UTC)
    assert due.utcoffset() == wanted.utcoffset()
