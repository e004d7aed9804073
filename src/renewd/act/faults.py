"""Crash and hold points for the fault tests: the process stops itself where a test asks.

`RENEWD_CRASH_AT=after-charge` kills the process with SIGKILL the first time the point is
reached, `after-send#3` the third time. `RENEWD_HOLD_AT=after-commit#5` stops it there with
SIGSTOP instead, so that a test can change the world around a run frozen at a known point (end
its lock session, let another renewd work) and then let it go on with SIGCONT. Nothing else
reads these variables; they exist so the exactly-once promises are tested against real kills
and real lost locks at the worst moments, not against mocks.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "RENEWD_CRASH_AT"
HOLD_ENV = "RENEWD_HOLD_AT"
_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    crash, hold = os.environ.get(ENV), os.environ.get(HOLD_ENV)
    if not crash and not hold:
        return
    _reached[name] += 1
    for wanted, how in ((crash, signal.SIGKILL), (hold, signal.SIGSTOP)):
        for point in (wanted or "").split(","):
            target, _, nth = point.partition("#")
            if target == name and _reached[name] == int(nth or 1):
                os.kill(os.getpid(), how)
