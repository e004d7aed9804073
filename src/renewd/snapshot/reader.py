"""Streaming snapshot readers (CSV with a header, or JSON Lines), one validated Mailbox at a time.

A bad row is reported with its line, field and reason and skipped; the rest is still read. A
file that is not a snapshot at all raises SnapshotError before any row is yielded.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import functools
import itertools
import multiprocessing
import os
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import BinaryIO

from renewd.core.batching import batched
from renewd.core.errors import SnapshotError
from renewd.core.model import Mailbox, RowError
from renewd.snapshot import blocks, slow
from renewd.snapshot.blocks import Block, Blocks, Overlong, decode, lines_in
from renewd.snapshot.census import settle
from renewd.snapshot.fast import FastRows
from renewd.snapshot.jsonl import fast_rows
from renewd.snapshot.pattern import Pattern
from renewd.snapshot.rows import read_header
from renewd.snapshot.scan import Records, Scan, Wanted
from renewd.snapshot.spill import Place, Spill
from renewd.snapshot.split import die_with, split_point
from renewd.snapshot.tally import KEPT_ERRORS, Claimed, Tally

__all__ = ["KEPT_ERRORS", "Snapshot", "Wanted", "taken_at"]

SENT = 1024  # rows per pickle the other process writes back

HEADER_LIMIT = 1 << 16  # bytes in a CSV header line

# What the other process of a split read sends back: where its rows and claims are, its counts.
Half = tuple[list[Place], Claimed, Tally]


@dataclass(frozen=True)
class Start:
    """How to read the records of one file (its fast pattern and its slow way), its blocks after
    the header, and (JSON Lines) its first record, read to learn its keys."""

    pattern: Pattern | None
    records: Records
    blocks: Blocks
    first: Block | None


class Snapshot(Tally):
    """One pass over a snapshot file. Iterate it for valid mailboxes; errors and counts accumulate.

    Rows that repeat a mailbox_id (valid or not) are reported, and the id lands in `duplicates` so
    the caller can take no action at all for that mailbox: which row is right cannot be known.
    Valid rows of one account that disagree on its balance or currency are reported in
    `conflicts` (not rejected) and the account lands in `conflicting_accounts`. Both are known
    only once the scan has ended; until then every valid row is yielded.
    """

    def __init__(self, path: Path, editions: frozenset[str], default_locale: str) -> None:
        super().__init__(path)
        self.editions = editions
        self.default_locale = default_locale

    def __iter__(self) -> Iterator[Mailbox]:
        return self.scan()

    def scan(self, wanted: Wanted | None = None) -> Iterator[Mailbox]:
        """Validate every row; build (and yield) a Mailbox only for the rows `wanted` picks.

        Most rows of a big snapshot are nowhere near a step: blocks of lines are checked by one
        regular expression and only the picked rows are converted. Any other line goes the slow
        way (the csv module or json, then field by field), which gives the precise error; both
        ways accept exactly the same rows.
        """
        with _open(self.path) as handle:
            fd = handle.fileno()
            yield from self._rows(fd, wanted or Wanted())
            census = self.census()
            if len(census):
                self._settle(fd, [int(line) for line in census])

    def _rows(self, fd: int, wanted: Wanted) -> Iterator[Mailbox]:
        # Only a scan that keeps few rows is split: the other half's rows come back pickled.
        split = None
        if wanted.expiry is not None:
            split = split_point(fd, quoted=not self._jsonl)
        if split is None:
            yield from self._scan(self._start(fd), wanted)
        else:
            yield from self._scan_halves(fd, wanted, split)

    @property
    def _jsonl(self) -> bool:
        return self.path.suffix.lower() in (".jsonl", ".ndjson")

    def _start(self, fd: int) -> Start:
        """Read the header (CSV) or the first object (JSON Lines): the way to read the rest, and
        the blocks after it."""
        path = str(self.path)
        limit = slow.MAX_RECORD if self._jsonl else HEADER_LIMIT
        size = os.fstat(fd).st_size
        reader = Blocks(fd, 0, size, 0, not self._jsonl, slow.MAX_RECORD, blocks.BLOCK)
        if os.pread(fd, 3, 0) == b"\xef\xbb\xbf":
            reader.position = 3
        while True:
            start = reader.position
            data = reader.readline(limit + 1)
            line = decode(data)
            reader.last += lines_in(line)
            if len(data) > limit:
                raise SnapshotError(f"{path}:{reader.last}: not a mailbox snapshot: line too long")
            if not self._jsonl or not line or line.strip():
                break
        if not self._jsonl:
            header = read_header(csv.reader([line]), path)
            records = functools.partial(slow.csv_records, header=header, path=path)
            return Start(FastRows(header, self.editions), records, reader, None)
        if not line:
            raise SnapshotError(f"{path}: empty file, not a snapshot")
        pattern = fast_rows(line, path, reader.last, self.editions)
        records = functools.partial(slow.json_records, path=path)
        first = Block(reader.last - lines_in(line), line, start, reader.position)
        return Start(pattern, records, reader, first)

    def _scanner(self, start: Start, wanted: Wanted, tally: Tally | None = None) -> Scan:
        return Scan(
            tally or self, start.pattern, start.records, start.blocks.quoted, wanted,
            self.editions, self.default_locale,
        )  # fmt: skip

    def _scan(self, start: Start, wanted: Wanted) -> Generator[Mailbox, None, int]:
        """The records of `start.blocks` (and its first record, if it has one); returns the
        number of the last line read."""
        scan = self._scanner(start, wanted)
        reader = start.blocks
        for item in itertools.chain([start.first] if start.first else [], reader):
            if isinstance(item, Overlong):
                reason = f"longer than {slow.MAX_RECORD} bytes"
                self.reject(RowError(str(self.path), item.line, "", reason))
                continue
            reader.last = yield from scan.block(item.before, item.text)
            self.mark(item.before, reader.last, item.start, item.end)
        return reader.last

    def _settle(self, fd: int, census: list[int]) -> None:
        """The second pass, taken only when some hash repeats: it reads again only the blocks
        that hold the lines in `census`, and notes which rows repeat which id, which account."""
        scan = self._scanner(self._start(fd), Wanted(), Tally(self.path))
        scan.census, scan.found = census, []
        for before, start, end in self.marked(census):
            text = decode(os.pread(fd, end - start, start))
            collections.deque(scan.block(before, text), maxlen=0)
        settle(self, scan.found)

    def _scan_halves(self, fd: int, wanted: Wanted, split: tuple[int, int]) -> Iterator[Mailbox]:
        """The file up to byte `split[0]` here, the rest in a forked process at the same time.

        `split[0]` ends a record (see `split_point`), so the halves read exactly as the whole
        would. Both read the one open file (replacing the file on disk changes nothing). If the
        other process fails, or takes much longer than this half took, or this half does not
        end on line `split[1]`, the rest is read here after all.
        """
        cut, breaks = split
        for stream in (sys.stdout, sys.stderr):  # else the copy in the fork flushes them again
            stream.flush()
        receiver, sender = multiprocessing.Pipe(duplex=False)
        returned = Spill()  # the other process's rows, written by it, read here
        other = multiprocessing.get_context("fork").Process(
            target=self._read_half,
            args=(sender, fd, wanted, split, os.getpid(), returned),
            daemon=True,
        )
        started = time.monotonic()
        other.start()
        sender.close()
        half: Half | None = None
        try:
            start = self._start(fd)
            end = start.blocks.stop
            start.blocks.stop = cut
            last = yield from self._scan(start, wanted)
            patience = 5 + 2 * (time.monotonic() - started)
            with contextlib.suppress(EOFError, OSError):
                if last == breaks and receiver.poll(patience):
                    half = receiver.recv()
            if half is not None:
                places, claimed, tally = half
                self.merge(tally, claimed, returned)
                for place in places:
                    yield from returned.get(place)
                return
            start.blocks.stop = end
            yield from self._scan(replace(start, first=None), wanted)
        finally:
            receiver.close()
            other.kill()
            other.join()
            if half is None:
                returned.close()

    def _read_half(
        self,
        sender: Connection,
        fd: int,
        wanted: Wanted,
        split: tuple[int, int],
        parent: int,
        returned: Spill,
    ) -> None:
        """In the forked process: read from byte `split[0]` on; the rows found and the claims
        go to `returned`, and where they are goes back with the counts."""
        die_with(parent)
        cut, breaks = split
        found: Half | None = None
        with contextlib.suppress(Exception):  # whatever it was, the parent reads this half
            start = self._start(fd)
            start.blocks.position, start.blocks.last = cut, breaks
            half = Snapshot(self.path, self.editions, self.default_locale)
            half.spill_to(returned)
            rows = half._scan(replace(start, first=None), wanted)
            places = [returned.put(chunk) for chunk in batched(rows, SENT)]
            found = (places, half.claims(returned), half)
        sender.send(found)
        sender.close()


def _open(path: Path) -> BinaryIO:
    """Open after ruling out files that are not snapshots at all.

    A NUL byte rejects its row only, unless the file is binary: one in its first line, or NUL
    bytes making up an eighth of its first 4 KiB (UTF-16, archives, images).
    """
    try:
        raw = path.open("rb")
        head = raw.read(4096)
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from exc
    text = head.removeprefix(b"\xef\xbb\xbf")
    first = text.splitlines()[0] if text.strip() else b""
    problem = ""
    if not text.strip():
        problem = "empty file, not a snapshot"
    elif b"\0" in first or head.count(b"\0") * 8 >= len(head):
        problem = "binary data, not a snapshot (expected CSV or JSON Lines)"
    if problem:
        raw.close()
        raise SnapshotError(f"{path}: {problem}")
    return raw


def taken_at(path: Path) -> datetime:
    """When the export was written: deductions after it cannot be in its balances."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)
