"""What the daemon knows about itself, and its verdict: ok, degraded or failing.

`/healthz` answers the verdict (HTTP 200, 200, 503) with the reasons; `renewd status` and the
systemd STATUS= line show it. Failing means the work is not getting done (the last run failed,
or no run succeeded for `overdue_hours`); degraded means it is, but a person should look (a
refused reload, a held run, a stopped channel, a day skipped for want of its snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass
class State:
    """What the daemon knows about itself, for /healthz, STATUS= and `renewd status`."""

    started: datetime
    next_run: datetime
    last_run: dict[str, Any] = field(default_factory=dict)
    last_success: datetime | None = None
    last_failure: str = ""
    reload_errors: list[str] = field(default_factory=list)
    waiting_for: str = ""
    outbox: int = 0
    held: str = ""  # the last run held deletions or deductions back: why
    stopped: dict[str, str] = field(default_factory=dict)  # channels the last run stopped
    skipped: str = ""  # a day skipped because its snapshot never came
    running: dict[str, Any] = field(default_factory=dict)  # the run in progress: day, progress


def verdict(state: State, now: datetime, overdue: timedelta) -> tuple[str, list[str]]:
    """("ok" | "degraded" | "failing", the reasons, the failing ones first)."""
    failing = []
    if state.last_failure:
        failing.append(f"the last run failed: {state.last_failure}")
    reference = state.last_success or state.started
    if now - reference > overdue:
        failing.append(f"no successful run since {reference.isoformat()}")
    degraded = []
    if state.reload_errors:
        count = len(state.reload_errors)
        plural = "s" if count > 1 else ""
        degraded.append(f"a reload was refused ({count} problem{plural}); the previous policy runs")
    if state.held:
        degraded.append(f"the last run held deletions or deductions back: {state.held}")
    degraded += [f"{channel} stopped: {why}" for channel, why in sorted(state.stopped.items())]
    if state.skipped:
        degraded.append(state.skipped)
    status = "failing" if failing else "degraded" if degraded else "ok"
    return status, failing + degraded


def body(state: State, now: datetime, overdue: timedelta, policy: str) -> dict[str, Any]:
    """The /healthz JSON body (README, "Health"): keys may be added, never renamed."""
    status, problems = verdict(state, now, overdue)
    return {
        "status": status,
        "problems": problems,
        "policy": policy,
        "last_run": state.last_run,
        "last_success": state.last_success,
        "next_run": state.next_run,
        "running": state.running,
        "outbox": state.outbox,
        "waiting_for_snapshot": state.waiting_for,
        "reload_errors": state.reload_errors,
    }


def status_line(state: State, verdict_now: str) -> str:
    """systemd's STATUS= between runs: the last run, the outbox, the next run, and the verdict."""
    last = state.last_run
    summary = f"last run {last.get('day')} {last.get('status')}" if last else "no run yet"
    health = "" if verdict_now == "ok" else f"; {verdict_now.upper()}"
    return f"{summary}; outbox {state.outbox}; next {state.next_run.isoformat()}{health}"
