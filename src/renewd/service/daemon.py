"""`renewd serve`: the daily run on schedule, safe policy reloads, signals, health and metrics.

One process holds the ledger lock for its whole life and does everything in its main thread;
signal handlers only set flags. The schedule is `schedule.next_run`, a pure function of the clock.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from renewd.act.alerts import alert_once
from renewd.act.held import held_summary
from renewd.act.preflight import check
from renewd.act.run import RunReport, open_ledger, run_locked
from renewd.config.load import load_config
from renewd.config.model import Config
from renewd.core.errors import RenewdError, UnusableFile
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy
from renewd.service import health, systemd
from renewd.service.health import State
from renewd.service.observe import Metrics, Observer
from renewd.service.progress import Reporter
from renewd.service.receipts import ReceiptService
from renewd.service.schedule import next_run, run_time
from renewd.state.ledger import Ledger
from renewd.state.lock import LockWatch, RunLock

log = logging.getLogger("renewd")
FAKE_NOW = "RENEWD_FAKE_NOW"


class Clock:
    """Real time; or, for tests only, RENEWD_FAKE_NOW: an instant that then runs in real time."""

    def __init__(self) -> None:
        fake = os.environ.get(FAKE_NOW)
        self._start = datetime.fromisoformat(fake) if fake else None
        self._since = time.monotonic()

    def now(self) -> datetime:
        if self._start is None:
            return datetime.now(UTC)
        return self._start + timedelta(seconds=time.monotonic() - self._since)


def load(path: Path) -> tuple[Config, Policy]:
    config = load_config(path)
    return config, load_policy(policy_files(config.rules))


class Daemon:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config, self.policy = load(config_path)
        self.zone = ZoneInfo(self.policy.timezone)
        self.clock = Clock()
        self.metrics = Metrics()
        self.metrics.channels(self.config.senders)
        self.metrics.judge(self._causes)
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.reload_requested = False
        self.run_requested = True  # on start: today's work, which also finishes what is open
        self.pending_day: date | None = None
        self.retry_at: datetime | None = None
        self.resume_at: datetime | None = None
        self.beat = time.monotonic()
        self.watch: LockWatch | None = None
        self.listening = ""  # the serve.listen this process holds: a reload does not probe it
        now = self.clock.now()
        self.state = State(started=now, next_run=next_run(now, self.config.serve.run_at, self.zone))
        self.sources = self._sources()
        self.reporter = Reporter(self.config.serve.progress_seconds, self.stopping)
        self.counted: Counter[str] = Counter()  # of the run's outcomes, those in the metrics
        self.receipts: ReceiptService | None = None

    # -- the loop -------------------------------------------------------------------------------

    def serve(self) -> int:
        ledger = open_ledger(self.config)
        try:
            with RunLock(ledger.engine) as lock:
                self.watch = LockWatch(lock, self.stopping, retaken=ledger.take_ledger)
                ledger.upgrade()
                ledger.take_ledger()
                return self._serve(ledger)
        finally:
            ledger.close()

    def _serve(self, ledger: Ledger) -> int:
        observer = self._observer()
        receipts = ReceiptService(
            self.config, ledger, self.metrics.registry, self.stopping, lambda: self.policy
        )
        self.receipts = receipts
        receipts.start()
        self._signals()
        self.reporter.start()
        watchdog = systemd.watchdog_interval()
        if watchdog:
            threading.Thread(
                target=self._watchdog, args=(watchdog,), name="renewd-watchdog", daemon=True
            ).start()
        log.info(
            "renewd serving; policy %s; next run %s",
            self.policy.digest,
            self.state.next_run.isoformat(),
        )
        systemd.notify("READY=1")
        try:
            while not self.stopping.is_set():
                if self.watch is not None:
                    self.watch.hold()
                self._tick(ledger)
                self.wake.wait(self._sleep())
                self.wake.clear()
        finally:
            systemd.notify("STOPPING=1")
            receipts.stop()
            if observer is not None:
                observer.stop()
        log.info("renewd stopped; open work stays in the outbox for the next start")
        if self.watch is not None and self.watch.lost is not None:
            raise self.watch.lost
        return 0

    def _tick(self, ledger: Ledger) -> None:
        self.beat = time.monotonic()
        now = self.clock.now()
        if self.reload_requested or self._sources() != self.sources:
            self._reload()
        if now >= self.state.next_run:
            self.pending_day = self.state.next_run.astimezone(self.zone).date()
            self.state.next_run = next_run(
                now + timedelta(seconds=1), self.config.serve.run_at, self.zone
            )
        if self.run_requested:
            self.run_requested = False
            self.pending_day = now.astimezone(self.zone).date()
            self.retry_at = None
        if self.pending_day is not None and (self.retry_at is None or now >= self.retry_at):
            self._attempt(ledger, self.pending_day, now)
        elif self.resume_at is not None and now >= self.resume_at:
            self.resume_at = None
            self._run(ledger, now.astimezone(self.zone).date(), resume=True)
        self.state.outbox = ledger.outbox_depth()
        self.metrics.outbox.set(self.state.outbox)
        self.metrics.held.set(ledger.held_count())
        systemd.notify(f"STATUS={self._status()}")

    def _sleep(self) -> float:
        now = self.clock.now()
        wakes = [
            self.state.next_run,
            now + timedelta(seconds=self.config.serve.reload_poll_seconds),
        ]
        wakes += [moment for moment in (self.retry_at, self.resume_at) if moment is not None]
        return max(0.0, min((moment - now).total_seconds() for moment in wakes))

    # -- a day's work ---------------------------------------------------------------------------

    def _attempt(self, ledger: Ledger, day: date, now: datetime) -> None:
        """Run the day if its snapshot is there, else wait for it until the deadline."""
        path = self.config.snapshot_for(day)
        if path.is_file():
            self.pending_day, self.retry_at, self.state.waiting_for = None, None, ""
            self._run(ledger, day)
            return
        deadline = run_time(day, self.config.serve.snapshot_deadline, self.zone)
        if now >= deadline:
            self.pending_day, self.retry_at, self.state.waiting_for = None, None, ""
            late = deadline.isoformat()
            message = f"the snapshot for {day} ({path}) was not there by {late}; {day} is skipped"
            log.error(message)
            self.state.skipped = message
            self._alert(ledger, day, "snapshot-missing", message)
            return
        if not self.state.waiting_for:
            log.warning("waiting for the snapshot %s until %s", path, deadline.isoformat())
        self.state.waiting_for = str(path)
        self.retry_at = now + timedelta(seconds=self.config.serve.snapshot_poll_seconds)

    def _run(self, ledger: Ledger, day: date, resume: bool = False) -> None:
        path = self.config.snapshot_for(day)
        if resume and not path.is_file():
            return
        config, policy = self.config, self.policy  # a reload during the run waits for the next one
        started = time.monotonic()
        meter = self.reporter.begin(day)
        self.counted = Counter()
        self.state.running = {"day": day.isoformat()}
        log.info("run for %s: starting on %s", day, path)
        try:
            report = run_locked(
                config,
                policy,
                ledger,
                path,
                day,
                stopping=self.stopping,
                progress=self._beat,
                meter=meter,
                watch=self.watch,
            )
        except Exception as exc:  # a failed run is reported and alerted; the daemon carries on
            self._failed(ledger, day, exc)
            return
        finally:
            self._count_sends()
            self.reporter.end()
            self.state.running = {}
        self._finished(ledger, report, time.monotonic() - started)

    def _failed(self, ledger: Ledger, day: date, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, RenewdError) else f"{type(exc).__name__}: {exc}"
        self.metrics.runs.labels(status="failed").inc()
        self.state.last_failure = message
        self.state.last_run = {"day": day.isoformat(), "status": "failed", "message": message}
        log.error("run for %s failed: %s", day, message, exc_info=not isinstance(exc, RenewdError))
        self._alert(ledger, day, "run-failed", f"the run for {day} failed: {message}")

    def _finished(self, ledger: Ledger, report: RunReport, seconds: float) -> None:
        day = report.day
        self.metrics.runs.labels(status=report.status).inc()
        self.metrics.duration.observe(seconds)
        for (rule, action), count in report.result.actions.items():
            self.metrics.actions.labels(rule=rule, kind=action.value).inc(count)
        now = self.clock.now()
        self.state.last_success, self.state.last_failure = now, ""
        self.metrics.last_success.set(now.timestamp())
        outcomes = (
            ", ".join(f"{key}={count}" for key, count in sorted(report.outcomes.items()))
            or "nothing to do"
        )
        self.state.last_run = {
            "day": day.isoformat(),
            "status": report.status,
            "outcomes": dict(report.outcomes),
        }
        self.state.held = held_summary(report) if report.held else ""
        self.state.stopped, self.state.skipped = dict(report.stopped), ""
        log.info("run %s for %s %s: %s", report.run_id, day, report.status, outcomes)
        if report.held:
            log.warning("run %s held: %s", report.run_id, self.state.held)
        if ledger.outbox_depth() and not self.stopping.is_set():
            self.resume_at = now + timedelta(seconds=self.config.serve.resume_interval_seconds)

    def _alert(self, ledger: Ledger, day: date, cause: str, message: str) -> None:
        alert_once(self.config, ledger, day, cause, message)

    # -- reload, signals, health ----------------------------------------------------------------

    def _sources(self) -> tuple[tuple[str, int], ...]:
        """Files whose change means a reload: the config, the rules, the template overrides."""
        paths = [self.config_path, *policy_files(self.config.rules)]
        if self.config.templates is not None and self.config.templates.is_dir():
            paths += sorted(p for p in self.config.templates.rglob("*") if p.is_file())
        found = []
        for path in paths:
            try:
                found.append((str(path), path.stat().st_mtime_ns))
            except OSError:
                found.append((str(path), -1))
        return tuple(found)

    def _reload(self) -> None:
        """Validate everything first; swap only if all of it is good, else keep running as is."""
        self.reload_requested = False
        self.sources = self._sources()
        try:
            receiving = self.receipts.listening if self.receipts else ""
            problems = check(self.config_path, serving=self.listening, receiving=receiving)
        except UnusableFile as exc:  # the config is gone or unreadable: keep running as is
            problems = exc.problems
        if problems:
            self.state.reload_errors = [str(p) for p in problems]
            self.metrics.reload_failures.inc()
            self.metrics.reload_ok.set(0)
            for problem in problems:
                log.error("reload refused: %s", problem)
            log.error("keeping policy %s", self.policy.digest)
            return
        self.config, self.policy = load(self.config_path)
        if self.receipts is not None:
            self.receipts.reload(self.config)
        self.zone = ZoneInfo(self.policy.timezone)
        self.state.reload_errors = []
        self.metrics.reload_ok.set(1)
        self.state.next_run = next_run(self.clock.now(), self.config.serve.run_at, self.zone)
        self.sources = self._sources()
        log.info("policy reloaded: %s", self.policy.digest)

    def _signals(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            if self.stopping.is_set():  # a second signal: leave now; the outbox makes it safe
                os._exit(1)
            log.info("%s: finishing what is in flight, then stopping", signal.Signals(signum).name)
            self.stopping.set()
            self.wake.set()
            deadline = threading.Timer(self.config.serve.stop_timeout_seconds, os._exit, (1,))
            deadline.daemon = True
            deadline.start()

        def flag(name: str) -> Callable[[int, FrameType | None], None]:
            def handler(_signum: int, _frame: FrameType | None) -> None:
                setattr(self, name, True)
                self.wake.set()

            return handler

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, flag("reload_requested"))
        signal.signal(signal.SIGUSR1, flag("run_requested"))

    def _beat(self) -> None:
        """Progress in a run: count what was sent, and check the lock now and then; if it is
        lost, stop sending."""
        self.beat = time.monotonic()
        self._count_sends()
        if self.watch is not None:
            self.watch(self.config.serve.reload_poll_seconds)

    def _count_sends(self) -> None:
        """The run's outcomes so far into the metrics, as each message goes (not at the end)."""
        outcomes = self.reporter.meter.outcomes
        for key, count in outcomes.items():
            new = count - self.counted[key]
            kind, _, rest = key.partition(":")
            if new and kind == "notify":
                channel, _, outcome = rest.partition(":")
                self.metrics.sends.labels(channel=channel, outcome=outcome).inc(new)
            self.counted[key] = count

    def _watchdog(self, interval: float) -> None:
        """Ping systemd while the main thread shows signs of life; a hung daemon gets restarted."""
        while not self.stopping.wait(interval):
            if time.monotonic() - self.beat < interval * 4 + self.config.serve.reload_poll_seconds:
                systemd.notify("WATCHDOG=1")

    def health(self) -> tuple[bool, dict[str, Any]]:
        """The /healthz verdict: "healthy" (HTTP 200) unless failing, and the JSON body."""
        overdue = timedelta(hours=self.config.serve.overdue_hours)
        detail = health.body(self.state, self.clock.now(), overdue, self.policy.digest)
        if detail["running"]:  # a copy: this runs in the HTTP server's thread
            detail["running"] = {**detail["running"], "progress": self.reporter.text()}
        return detail["status"] != "failing", detail

    def _causes(self) -> tuple[str, list[str]]:
        """The verdict and its causes, for /metrics (called in the HTTP server's thread)."""
        overdue = timedelta(hours=self.config.serve.overdue_hours)
        return health.causes(self.state, self.clock.now(), overdue)

    def _status(self) -> str:
        overdue = timedelta(hours=self.config.serve.overdue_hours)
        status, _ = health.verdict(self.state, self.clock.now(), overdue)
        return health.status_line(self.state, status)

    def _observer(self) -> Observer | None:
        if not self.config.serve.listen:
            return None
        observer = Observer(self.config.serve.listen, self.metrics, self.health)
        observer.start()
        self.listening = self.config.serve.listen
        log.info("metrics and /healthz on http://%s", observer.address)
        return observer
