"""The progress display: a rich bar on stderr while a command works, read from the job's meter.

Only on a terminal, and never on stdout: output for scripts is exactly the same with it or
without it (and rich is not even imported then). What the job itself writes to stderr
meanwhile (an alert's log line) is printed above the bar; the bar is gone when the job ends,
before the command's own report.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from renewd.core.meter import Meter

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

POLL_SECONDS = 0.2


@contextlib.contextmanager
def shown(meter: Meter, streaming: bool = False, console: Console | None = None) -> Iterator[None]:
    """Show `meter` on stderr while the block runs, if stderr is a terminal; else do nothing.

    `streaming`: the block writes to stdout as it goes (jsonl, the console sender); a bar on the
    same terminal would tear those lines, so there is none when stdout is a terminal too.
    """
    if console is None and not sys.stderr.isatty():
        yield
        return
    from renewd.cli.bar import display

    bar = display(console)
    if bar is None or (streaming and sys.stdout.isatty()):
        yield
        return
    done = threading.Event()
    follower = threading.Thread(target=_follow, args=(meter, bar, done), daemon=True)
    with bar:
        follower.start()
        try:
            yield
        finally:
            done.set()
            follower.join()


def _follow(meter: Meter, bar: Progress, done: threading.Event) -> None:
    """Copy the meter into the display until the job ends; a new stage gets a new bar."""
    serial, task = -1, None
    while True:
        if meter.serial != serial and meter.stage:
            if task is not None:
                bar.remove_task(task)
            serial, task = meter.serial, bar.add_task(meter.stage, total=None)
        if task is not None:
            _update(meter, bar, task)
        if done.wait(POLL_SECONDS):
            return


def _update(meter: Meter, bar: Progress, task: TaskID) -> None:
    completed, total = meter.totals()
    bar.update(task, completed=completed, total=total, description=meter.describe())
