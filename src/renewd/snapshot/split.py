"""Reading a big snapshot in two processes: where the second may start, and how it must end."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # prctl(2)

# bytes: a CSV snapshot this big is read by two processes at once (see split_point)
PARALLEL_FROM = 32 << 20


def split_point(fd: int, quoted: bool) -> tuple[int, int] | None:
    """Where a second process can start reading a big snapshot, and the number of lines before:
    just after a line end past the middle where no record runs on. (The halves cost this process
    and the other alike, in CPU time; the cut at 4/7 of an earlier reader left this one, which
    also takes in the other's rows, the last to finish.) For a CSV (`quoted`), that is where the
    quote characters after the header balance: a quoted field may hold line breaks, so not
    every line end ends a record.

    None for a small file or a single CPU.
    """
    size = os.fstat(fd).st_size
    if size < PARALLEL_FROM or len(cpus()) < 2:
        return None
    target = size // 2
    position = lines = quotes = 0
    header = True  # the header is one line, whatever its quotes: they are not counted
    after_return = False
    while chunk := os.pread(fd, 1 << 20, position):
        begin = 0
        if header:
            ends = [at for at in (chunk.find(b"\n"), chunk.find(b"\r")) if at != -1]
            begin = min(ends) + 1 if ends else len(chunk)
            header = not ends
        start, cut = max(begin, target - position), None
        if start < len(chunk):
            cut = _cut(chunk, begin, start, quotes if quoted else None)
        seen = chunk if cut is None else chunk[:cut]
        lines += _count(seen, b"\n")
        if b"\r" in seen:
            lines += seen.count(b"\r") - seen.count(b"\r\n")
        lines -= after_return and seen.startswith(b"\n")
        if cut is not None:
            return (position + cut, lines) if position + cut < size else None
        if quoted and b'"' in chunk:
            quotes += _count(chunk, b'"', begin)
        after_return = chunk.endswith(b"\r")
        position += len(chunk)
    return None


def _cut(chunk: bytes, begin: int, start: int, quotes: int | None) -> int | None:
    """The first place in `chunk` from `start` just after a LF where the quotes balance:
    `quotes` were counted before `chunk`, the chunk's own from `begin` (None: no quotes)."""
    if quotes is not None:
        quotes += chunk.count(b'"', begin, start)
    while (found := chunk.find(b"\n", start)) != -1:
        if quotes is None:
            return found + 1
        quotes += chunk.count(b'"', start, found + 1)
        if quotes % 2 == 0:
            return found + 1
        start = found + 1
    return None


def _count(data: bytes, char: bytes, start: int = 0) -> int:
    """`data.count(char, start)` for one byte, vectorised: bytes.count goes a byte at a time,
    about 1-2 ms a MiB, and these counts hold up the start of the other process."""
    import numpy as np

    if start >= len(data):
        return 0
    return int(np.count_nonzero(np.frombuffer(data, np.uint8, offset=start) == ord(char)))


def cpus() -> set[int]:
    """The CPUs this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return set(affinity(0)) if affinity else set(range(os.cpu_count() or 1))


def die_with(parent: int) -> None:
    """In the fork: a killed run must not leave this process holding the run lock it inherited
    (Linux), nor may the daemon's signal handlers run here."""
    for number, action in (
        (signal.SIGTERM, signal.SIG_DFL),
        (signal.SIGINT, signal.SIG_DFL),
        (signal.SIGHUP, signal.SIG_IGN),
        (signal.SIGUSR1, signal.SIG_IGN),
    ):
        signal.signal(number, action)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(0)
