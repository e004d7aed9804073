"""Work shared with one forked process: this one takes the even items, the other the odd ones.

Both processes walk the same items (the fork has a copy of everything); each result is written
to a Spill of its own process's, and the other's come back as places through a pipe. With one
CPU, or if the other process fails or takes far longer, this process does its share as well.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from typing import TypeVar

from renewd.snapshot.spill import Spill
from renewd.snapshot.split import cpus, die_with

T = TypeVar("T")
R = TypeVar("R")
Work = Callable[[T, Spill], R]


def alternate(
    items: Callable[[], Iterable[T]], work: Work[T, R], worth_it: bool = True
) -> list[tuple[Spill, R]]:
    """`work(item, spill)` for every item, in order, with the spill its result was written to
    (the caller closes the spills). `worth_it`: False does it all here, without a fork."""
    mine = Spill()
    if not worth_it or len(cpus()) < 2:
        return [(mine, work(item, mine)) for item in items()]
    for stream in (sys.stdout, sys.stderr):  # else the copy in the fork flushes them again
        stream.flush()
    theirs = Spill()
    receiver, sender = multiprocessing.Pipe(duplex=False)
    other = multiprocessing.get_context("fork").Process(
        target=_share, args=(items, work, theirs, sender, os.getpid()), daemon=True
    )
    started = time.monotonic()
    other.start()
    sender.close()
    done: dict[int, tuple[Spill, R]] = {}
    count = 0
    try:
        for count, item in enumerate(items(), 1):
            if count % 2 == 1:
                done[count - 1] = (mine, work(item, mine))
        patience = 5 + 2 * (time.monotonic() - started)
        with contextlib.suppress(EOFError, OSError):
            if receiver.poll(patience):
                done.update((n, (theirs, result)) for n, result in receiver.recv().items())
    finally:
        receiver.close()
        other.kill()
        other.join()
    if len(done) < count:  # what the other process did not do is done here
        for n, item in enumerate(items()):
            if n not in done:
                done[n] = (mine, work(item, mine))
    return [done[n] for n in range(count)]


def _share(
    items: Callable[[], Iterable[T]],
    work: Work[T, R],
    spill: Spill,
    sender: Connection,
    parent: int,
) -> None:
    """In the fork: the odd items; whatever goes wrong, the parent does them."""
    die_with(parent)
    results: dict[int, R] | None = None
    with contextlib.suppress(Exception):
        results = {n: work(item, spill) for n, item in enumerate(items()) if n % 2 == 1}
    with contextlib.suppress(OSError):
        sender.send(results or {})
    sender.close()
