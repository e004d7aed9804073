"""`renewd run`: one day's work for real, exactly once, under the ledger lock.

plan (the same as dry-run) -> guards -> every decision written to the ledger in one transaction
-> the executor applies the outbox -> the run record says what happened.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from renewd.act.alerts import alert_once
from renewd.act.executor import Executor
from renewd.act.faults import crash_point
from renewd.act.held import held_summary, note_held
from renewd.act.metering import meter_effects, metered
from renewd.act.plugins import plugin
from renewd.act.retention import after_run
from renewd.act.steps import ledger_steps
from renewd.config.model import Config
from renewd.core.meter import Meter
from renewd.core.model import Kind, StepKey
from renewd.delivery.senders.base import send_window
from renewd.delivery.templating import Renderer
from renewd.plan.day import DayResult, Part, plan_day
from renewd.plan.guards import first_sight, mass_hold, open_row_verdict
from renewd.policy.model import Policy
from renewd.snapshot.reader import taken_at
from renewd.state.claims import Tenure
from renewd.state.db import database_url
from renewd.state.ledger import Ledger
from renewd.state.lock import LockWatch, RunLock
from renewd.state.retention import Pruned
from renewd.state.runs import SnapshotInfo

HELD_EXIT = 3


@dataclass
class RunReport:
    run_id: int
    day: date
    status: str
    result: DayResult
    held: dict[str, list[str]] = field(default_factory=dict)  # reason: mailboxes (all: [])
    held_steps: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    stopped: dict[str, str] = field(default_factory=dict)
    written: int = 0
    lost: str = ""
    pruned: Pruned | None = None  # what retention forgot after the run


def open_ledger(config: Config) -> Ledger:
    return Ledger(database_url(config.ledger, config.base))


def run_day(
    config: Config,
    policy: Policy,
    snapshot_path: Path,
    day: date,
    *,
    allow_mass_deletion: bool = False,
    wait: float = 0.0,
    meter: Meter | None = None,
) -> RunReport:
    ledger = open_ledger(config)
    try:
        with RunLock(ledger.engine, wait) as lock:
            ledger.upgrade()
            ledger.take_ledger()
            watch = LockWatch(lock, threading.Event(), retaken=ledger.take_ledger)
            report = run_locked(
                config,
                policy,
                ledger,
                snapshot_path,
                day,
                allow_mass_deletion=allow_mass_deletion,
                stopping=watch.stopping,
                progress=watch,
                meter=meter,
                watch=watch,
            )
            if watch.lost is not None:
                raise watch.lost
            return report
    finally:
        ledger.close()


def run_locked(
    config: Config,
    policy: Policy,
    ledger: Ledger,
    snapshot_path: Path,
    day: date,
    *,
    allow_mass_deletion: bool = False,
    stopping: threading.Event | None = None,
    progress: Callable[[], None] | None = None,
    meter: Meter | None = None,
    watch: LockWatch | None = None,
) -> RunReport:
    """A run for a caller that holds the ledger lock (the daemon holds it for its whole life).

    `stopping` set from another thread or a signal handler ends the run after the effects in
    flight; `progress` is called as effects happen (the daemon's watchdog); `meter` shows how
    far the run got, for a progress display or the daemon's STATUS; `watch` learns when the
    executor finds the ledger taken by another renewd.
    """
    executor = _executor(config, policy, ledger)
    if stopping is not None:
        executor.stopping = stopping
    if progress is not None:
        executor.progress = progress
    meter = meter or Meter()
    executor.watch = watch
    report = _run(config, policy, ledger, executor, snapshot_path, day, allow_mass_deletion, meter)
    if not executor.stopping.is_set() and not report.lost:
        report.pruned = after_run(config, policy, ledger, day)
    return report


def _run(
    config: Config,
    policy: Policy,
    ledger: Ledger,
    executor: Executor,
    snapshot_path: Path,
    day: date,
    allow_mass_deletion: bool,
    meter: Meter,
) -> RunReport:
    if not ledger.epoch:  # a caller that took the lock without taking the ledger with it
        ledger.take_ledger()
    ledger.close_crashed_runs()
    run_id = ledger.start_run(day, _identity(snapshot_path), policy.digest)
    tenure = Tenure(run_id, ledger.epoch)
    read = (0, 0)  # rows read and rejected, once the snapshot has been read
    try:
        result = plan_day(config, policy, snapshot_path, day, ledger, keep_parts=True, meter=meter)
        read = (result.snapshot.rows_read, result.snapshot.rejected)
        ledger.planned(run_id, *read)
        report = RunReport(run_id, day, "done", result)
        try:
            mass = "" if allow_mass_deletion else _mass(config, result, ledger.last_rows_read())
            holds = _holds(result, mass)
            note_held(report, mass, holds)
            skip = _revalidate(
                config, ledger, result, run_id, held=bool(report.held) and not allow_mass_deletion
            )
            meter.begin("writing the plan", "steps")
            memory = _Memory(result.window.today)
            steps = ledger_steps(config, policy, result, mass, holds, memory.note)
            # record_plan reads every step before the sightings: by then memory has them all
            report.written = ledger.record_plan(
                run_id, metered(steps, meter), memory.sighted, day, memory.began
            )
        finally:
            result.close()  # the plan is in the ledger now: the executor works from there
        crash_point("after-plan")
        meter_effects(meter, ledger, executor)
        report.outcomes = executor.run(tenure, skip)
        report.stopped = dict(executor.stopped)
        report.lost = _lost(executor)
        _alert_operators(config, ledger, report)
        report.status = "lost" if report.lost else "held" if report.held else "done"
    except BaseException as exc:
        ledger.finish_run(
            run_id,
            "failed",
            rows_read=read[0],
            rows_rejected=read[1],
            counts=dict(tenure.counts),
            rejected=[],
            message=str(exc),
        )
        raise
    snapshot = result.snapshot
    ledger.finish_run(
        run_id,
        report.status,
        rows_read=snapshot.rows_read,
        rows_rejected=snapshot.rejected,
        counts=dict(report.outcomes),
        rejected=[str(e) for e in snapshot.errors],
        message=report.lost or (held_summary(report) if report.held else ""),
    )
    return report


def _lost(executor: Executor) -> str:
    """Why this run no longer holds the ledger, or "": a claim refused, or the lock's last check.

    Asked once more at the end, so that a run cut off in its last second does not say `done`.
    """
    watch = executor.watch
    if watch is not None and watch.lost is None and not executor.lost:
        watch(0.0)
    if watch is not None and watch.lost is not None:
        return str(watch.lost)
    return executor.lost


def _alert_operators(config: Config, ledger: Ledger, report: RunReport) -> None:
    """Held deletions or deductions and stopped channels need a person, whoever started the run."""
    if report.held:
        alert_once(config, ledger, report.day, "guard-held", "held back: " + held_summary(report))
    for channel, reason in report.stopped.items():
        alert_once(
            config, ledger, report.day, f"channel-stopped:{channel}", f"{channel} stopped: {reason}"
        )


def _revalidate(
    config: Config, ledger: Ledger, result: DayResult, run_id: int, held: bool
) -> set[int]:
    """Check what earlier runs left open against today's snapshot: cancel stale, skip unsure.

    Returns the ids to leave alone this run.
    """
    skip = set()
    snapshot = result.snapshot
    for row in ledger.open_rows(run_id):
        mailbox_id = row["mailbox_id"]
        rejected = mailbox_id in snapshot.rejected_ids or mailbox_id in snapshot.duplicates
        verdict, reason = open_row_verdict(
            row,
            result.watched.get(mailbox_id),
            rejected,
            result.window.today,
            config.message_ttl_days,
            held,
        )
        if verdict == "cancel":
            ledger.cancel(row["id"], reason)
        elif verdict == "skip":
            skip.add(row["id"])
    return skip


def _executor(config: Config, policy: Policy, ledger: Ledger) -> Executor:
    """Backends and senders are set up before anything is written: bad settings stop the run."""

    def make(kind: str, settings: dict[str, Any]) -> Any:
        return plugin(kind, settings["backend"])(settings, config.base)

    senders = {
        channel: plugin("sender", settings["backend"])(settings, config.base, channel)
        for channel, settings in config.senders.items()
    }
    renderer = Renderer(config.templates, config.default_locale)
    windows = {
        channel: send_window(settings, channel) for channel, settings in config.senders.items()
    }
    now = datetime.now(ZoneInfo(policy.timezone))
    return Executor(
        ledger,
        make("billing", config.billing),
        make("provisioning", config.provisioning),
        senders,
        renderer,
        windows,
        now,
    )


def _identity(path: Path) -> SnapshotInfo:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        pass
    return SnapshotInfo(str(path), digest.hexdigest(), taken_at(path))


class _Memory:
    """What the ledger keeps from the day's parts besides their steps, noted as the steps are
    worked out (one read of the parts): mailboxes seen expired and unrenewed today (the memory
    the deletion guard relies on), and cycles renewed elsewhere that this run saw first (the
    day each began must not move). Both are few: 14,489 and 0 at a 1M-row run."""

    def __init__(self, today: date) -> None:
        self.today = today
        self.sighted: list[tuple[str, date]] = []
        self.began: list[tuple[tuple[str, date], date]] = []

    def note(self, part: Part) -> None:
        today, history = self.today, part.history
        self.began.extend(history.began_now().items())
        for m in part.mailboxes.values():
            if m.expires_on <= today and not history.cycle(m.mailbox_id, m.expires_on).renewed:
                self.sighted.append((m.mailbox_id, m.expires_on))


def _mass(config: Config, result: DayResult, last_rows: int | None) -> str:
    snapshot = result.snapshot
    return mass_hold(
        result.deletions, snapshot.rows_read, last_rows, config.guards, snapshot.expired
    )


def _holds(result: DayResult, mass: str) -> dict[StepKey, str]:
    """Deletions renewd has not seen expired on an earlier run, in the plan's order (none to name
    under a mass hold, which holds them all)."""
    if mass:
        return {}
    today = result.window.today
    holds = {}
    for part in result.parts():
        for d in part.decisions:
            if d.kind is Kind.DELETE and not d.superseded_by:
                reason = first_sight(part.history.first_seen(d.mailbox_id, d.cycle), today)
                if reason:
                    holds[d.key] = reason
    return dict(sorted(holds.items(), key=lambda hold: (hold[0].cycle, hold[0].mailbox_id)))
