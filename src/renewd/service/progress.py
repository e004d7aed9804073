"""A run's progress under `serve`: systemd STATUS= kept current, and a log line at a steady
interval, both read from the run's meter by a thread of their own (the run never waits for them).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date

from renewd.core.meter import Meter
from renewd.service import systemd

log = logging.getLogger("renewd")
STATUS_SECONDS = 1.0


class Reporter:
    def __init__(self, interval: float, stopping: threading.Event) -> None:
        self.interval = interval
        self.stopping = stopping
        self.day: date | None = None
        self.meter = Meter()
        # when the last progress line was logged, in which stage, and the count then
        self._logged = (0.0, 0, 0)

    def begin(self, day: date) -> Meter:
        """A run starts: a fresh meter for it."""
        self.meter, self.day = Meter(), day
        self._logged = (time.monotonic(), 0, 0)
        return self.meter

    def end(self) -> None:
        self.day = None

    def text(self) -> str:
        """`run for 2026-12-01: sending 1,200/39,000 messages`, or "" between runs."""
        day, meter = self.day, self.meter
        described = meter.describe() if day is not None else ""
        return f"run for {day}: {described or meter.stage or 'starting'}" if day else ""

    def start(self) -> None:
        threading.Thread(target=self._loop, name="renewd-progress", daemon=True).start()

    def _loop(self) -> None:
        while not self.stopping.wait(STATUS_SECONDS):
            text = self.text()
            if not text:
                continue
            systemd.notify(f"STATUS={text}")
            now = time.monotonic()
            if now - self._logged[0] >= self.interval:
                self._log(text, now)

    def _log(self, text: str, now: float) -> None:
        """The line, with the rate since the last one when the run is still in the same stage."""
        serial = self.meter.serial
        done, total = self.meter.totals()
        then, stage, before = self._logged
        pace = ""
        if stage == serial and now > then:
            rate = (done - before) / (now - then)
            pace = f" ({rate:,.0f}/s"
            if total is not None and rate > 0 and total > done:
                pace += f", about {_duration((total - done) / rate)} left"
            pace += ")"
        log.info("progress: %s%s", text, pace)
        self._logged = (now, serial, done)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
