"""The progress display: a rich bar on stderr while a command works, read from the job's meter.

Only on a terminal, and never on stdout: output for scripts is exactly the same with it or
without it. What the job itself writes to stderr meanwhile (an alert's log line) is printed
above the bar; the bar is gone when the job ends, before the command's own report.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from renewd.core.meter import Meter

POLL_SECONDS = 0.2


class RateColumn(ProgressColumn):
    """Rows, mailboxes or messages per second, over rich's recent samples."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


class CountColumn(ProgressColumn):
    """`1,200/39,000`, or just `1,200` while the total is not known."""

    def render(self, task: Task) -> Text:
        done = int(task.completed)
        text = f"{done:,}" if task.total is None else f"{done:,}/{int(task.total):,}"
        return Text(text, style="progress.download")


def wanted(console: Console, streaming: bool) -> bool:
    """A terminal on stderr, and not one that stdout writes to while the job runs."""
    return console.is_terminal and not (streaming and sys.stdout.isatty())


@contextlib.contextmanager
def shown(meter: Meter, streaming: bool = False, console: Console | None = None) -> Iterator[None]:
    """Show `meter` on stderr while the block runs, if stderr is a terminal; else do nothing.

    `streaming`: the block writes to stdout as it goes (jsonl, the console sender); a bar on the
    same terminal would tear those lines, so there is none when stdout is a terminal too.
    """
    console = console or Console(stderr=True)
    if not wanted(console, streaming):
        yield
        return
    display = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        CountColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=True,
    )
    done = threading.Event()
    follower = threading.Thread(target=_follow, args=(meter, display, done), daemon=True)
    with display:
        follower.start()
        try:
            yield
        finally:
            done.set()
            follower.join()


def _follow(meter: Meter, display: Progress, done: threading.Event) -> None:
    """Copy the meter into the display until the job ends; a new stage gets a new bar."""
    serial, task = -1, None
    while True:
        if meter.serial != serial and meter.stage:
            if task is not None:
                display.remove_task(task)
            serial, task = meter.serial, display.add_task(meter.stage, total=None)
        if task is not None:
            _update(meter, display, task)
        if done.wait(POLL_SECONDS):
            return


def _update(meter: Meter, display: Progress, task: TaskID) -> None:
    completed, total = meter.totals()
    display.update(task, completed=completed, total=total, description=meter.describe())
