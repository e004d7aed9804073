"""Crash points for the fault tests: the process kills itself with SIGKILL where a test asks.

`RENEWD_CRASH_AT=after-charge` dies the first time the point is reached, `after-send#3` the third
time. Nothing else reads this variable; it exists so the exactly-once promises are tested against
real kills at the worst moments, not against mocks.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "RENEWD_CRASH_AT"
_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    _reached[name] += 1
    for point in wanted.split(","):
        target, _, nth = point.partition("#")
        if target == name and _reached[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
