"""Reading a big CSV in two processes: where the second may start, and reading a byte range
of the one open file without moving its position (a forked process reads the same file).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import signal
from typing import IO, Any

PR_SET_PDEATHSIG = 1  # prctl(2)

# bytes: a CSV snapshot this big is read by two processes at once (see split_point)
PARALLEL_FROM = 32 << 20


def split_point(fd: int) -> tuple[int, int] | None:
    """Where a second process can start reading a big CSV snapshot, and the line breaks before:
    just after a line end a little past the middle (that process also sends its rows back).

    None for a small file or a single CPU, and when the part before has a quote character (a
    quoted field may hold line breaks, so a line end need not end a record) or a CR that is
    not part of a CR LF (counted apart; not worth it for such rare files).
    """
    size = os.fstat(fd).st_size
    if size < PARALLEL_FROM or len(cpus()) < 2:
        return None
    target = size * 4 // 7
    position = feeds = returns = pairs = 0
    after_return = False
    while chunk := os.pread(fd, 1 << 20, position):
        cut = chunk.find(b"\n", max(0, target - position))
        if cut != -1:
            chunk = chunk[: cut + 1]
        if b'"' in chunk:
            return None
        pairs += chunk.count(b"\r\n") + (after_return and chunk.startswith(b"\n"))
        returns += chunk.count(b"\r")
        feeds += chunk.count(b"\n")
        after_return = chunk.endswith(b"\r")
        position += len(chunk)
        if cut != -1:
            return (position, feeds) if returns == pairs and position < size else None
    return None


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


class _Range(io.RawIOBase):
    """Bytes `start` to `end` (None: the end) of an open file, read with pread: the file's own
    position is left alone, and a forked process can read the same file too."""

    def __init__(self, fd: int, start: int, end: int | None) -> None:
        super().__init__()
        self._fd = fd
        self._position = start
        self._end = os.fstat(fd).st_size if end is None else end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = os.pread(self._fd, min(len(buffer), self._end - self._position), self._position)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def part_of(fd: int, start: int, end: int | None, encoding: str) -> IO[str]:
    return io.TextIOWrapper(
        io.BufferedReader(_Range(fd, start, end)),
        encoding=encoding,
        errors="surrogateescape",
        newline="",
    )
