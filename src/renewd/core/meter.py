"""How far a long job has got: its stage and counts, for a progress display or the daemon.

The job moves the meter; a reader on another thread polls it (rich's display, the daemon's
STATUS= and progress log line). Nothing here prints, sleeps or reads a clock: rates and ETAs are
the reader's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Count:
    """One thing counted in a stage: `sending 1,200/39,000 messages`."""

    verb: str  # what the stage is doing: "reading the snapshot", "sending"
    done: int
    total: int | None  # None: not known in advance (rows of a snapshot being read)
    unit: str  # "rows", "messages"

    def __str__(self) -> str:
        if self.total is None:
            return f"{self.verb}: {self.done:,} {self.unit}"
        return f"{self.verb} {min(self.done, self.total):,}/{self.total:,} {self.unit}"


Counter = tuple[str, Callable[[], int], int | None, str]  # verb, done(), total, unit


class Meter:
    """The current stage of a job and what it has done so far.

    A stage has one count or several (a run's effects: charges, deletions, messages); each count
    is read through a function, so the job need not push every step (`lambda: snapshot.rows_read`).
    """

    def __init__(self) -> None:
        self.stage = ""
        self.serial = 0  # changes with every stage: a display starts a new bar
        self._counters: tuple[Counter, ...] = ()
        self._advanced = 0
        # what a run's effects came to so far, by kind and outcome (`notify:email:sent`): the
        # executor's own tallies, which the daemon turns into metrics as each message goes
        self.outcomes: dict[str, int] = {}

    def begin(
        self, stage: str, unit: str, total: int | None = None, done: Callable[[], int] | None = None
    ) -> None:
        """A stage with one count: `done()` if given, else what `advance` adds up."""
        self.begin_many(stage, [(stage, done or self._advanced_so_far, total, unit)])

    def begin_many(self, stage: str, counters: list[Counter]) -> None:
        """A stage with several counts, shown side by side (those with a total of 0 are not)."""
        self._advanced = 0
        self._counters = tuple(c for c in counters if c[2] != 0) or tuple(counters[:1])
        self.stage = stage
        self.serial += 1

    def advance(self, steps: int = 1) -> None:
        self._advanced += steps

    def _advanced_so_far(self) -> int:
        return self._advanced

    def counts(self) -> list[Count]:
        return [Count(verb, done(), total, unit) for verb, done, total, unit in self._counters]

    def totals(self) -> tuple[int, int | None]:
        """Done and total over the stage's counts (total None when one of them is unknown)."""
        counts = self.counts()
        total: int | None = 0
        for count in counts:
            total = None if total is None or count.total is None else total + count.total
        done = sum(min(c.done, c.total) if c.total is not None else c.done for c in counts)
        return done, total

    def describe(self) -> str:
        """`charging 3/3 charges, sending 1,200/39,000 messages`; "" between stages."""
        return ", ".join(str(count) for count in self.counts())


def tally(outcomes: dict[str, int], prefix: str) -> Callable[[], int]:
    """How many outcomes have a key starting with `prefix`, readable from another thread while
    they change: the dict is copied in one step (no "changed size during iteration")."""

    def count() -> int:
        return sum(n for key, n in dict.copy(outcomes).items() if key.startswith(prefix))

    return count
