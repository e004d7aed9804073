"""The daemon's verdict, a pure function of what it knows and the time: ok, degraded, failing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from renewd.service.health import State, status_line, verdict

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
OVERDUE = timedelta(hours=26)


def state(**changes: Any) -> State:
    base = State(started=NOW - timedelta(hours=1), next_run=NOW + timedelta(hours=16))
    for key, value in changes.items():
        setattr(base, key, value)
    return base


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ("ok", [])),
        ({"last_success": NOW - timedelta(hours=2)}, ("ok", [])),
        (
            {"reload_errors": ["rules/a.yaml:3: unknown key 'x'", "rules/a.yaml:4: ..."]},
            ("degraded", ["a reload was refused (2 problems); the previous policy runs"]),
        ),
        (
            {"held": "3 deletions: first sight: ..."},
            (
                "degraded",
                ["the last run held deletions or deductions back: 3 deletions: first sight: ..."],
            ),
        ),
        (
            {"stopped": {"sms": "401 / 20003: authenticate"}},
            ("degraded", ["sms stopped: 401 / 20003: authenticate"]),
        ),
        (
            {"skipped": "the snapshot for 2026-12-01 (...) was not there by 08:00; skipped"},
            ("degraded", ["the snapshot for 2026-12-01 (...) was not there by 08:00; skipped"]),
        ),
        (
            {"last_failure": "disk full", "held": "1 deletion: ..."},
            (
                "failing",
                [
                    "the last run failed: disk full",
                    "the last run held deletions or deductions back: 1 deletion: ...",
                ],
            ),
        ),
        (
            {"started": NOW - timedelta(hours=30)},
            ("failing", [f"no successful run since {(NOW - timedelta(hours=30)).isoformat()}"]),
        ),
    ],
)
def test_verdict(changes: dict[str, Any], expected: tuple[str, list[str]]) -> None:
    assert verdict(state(**changes), NOW, OVERDUE) == expected


def test_the_status_line_says_when_it_is_not_ok() -> None:
    last = {"day": "2026-12-01", "status": "held"}
    assert status_line(state(last_run=last), "degraded") == (
        "last run 2026-12-01 held; outbox 0; next 2026-12-02T02:00:00+00:00; DEGRADED"
    )
    assert status_line(state(), "ok") == "no run yet; outbox 0; next 2026-12-02T02:00:00+00:00"
