"""Streaming snapshot readers (CSV with a header, or JSON Lines), one validated Mailbox at a time.

A bad row is reported with its line, field and reason and skipped; the rest is still read. A
file that is not a snapshot at all raises SnapshotError before any row is yielded.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import csv
import functools
import io
import multiprocessing
import os
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO

from renewd.core.batching import batched
from renewd.core.errors import SnapshotError
from renewd.core.model import Mailbox, RowError
from renewd.snapshot import blocks, slow
from renewd.snapshot.blocks import Blocks, Overlong, lines_in
from renewd.snapshot.census import settle
from renewd.snapshot.fast import FastRows
from renewd.snapshot.jsonl import fast_rows
from renewd.snapshot.pattern import Pattern
from renewd.snapshot.rows import read_header
from renewd.snapshot.scan import Records, Scan, Wanted
from renewd.snapshot.spill import Place, Spill
from renewd.snapshot.split import die_with, part_of, split_point
from renewd.snapshot.tally import KEPT_ERRORS, Claimed, Found, Tally

__all__ = ["KEPT_ERRORS", "Snapshot", "Wanted", "taken_at"]

SENT = 1024  # rows per pickle the other process writes back

HEADER_LIMIT = 1 << 16  # characters in a CSV header line

# What the other process of a split read sends back: where its rows and claims are, its counts.
Half = tuple[list[Place], Claimed, Tally]


@dataclass(frozen=True)
class Format:
    """How to read the records of one file: its fast pattern and its slow way."""

    pattern: Pattern | None
    records: Records
    quoted: bool


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
            yield from self._rows(handle, wanted or Wanted())
            census = self.census()
            if len(census):
                handle.seek(0)
                self._settle(handle, [int(line) for line in census])

    def _rows(self, handle: IO[str], wanted: Wanted) -> Iterator[Mailbox]:
        # Only a scan that keeps few rows is split: the other half's rows come back pickled.
        split = None
        if wanted.expiry is not None:
            split = split_point(handle.fileno(), quoted=not self._jsonl)
        if split is None:
            yield from self._scan(handle, wanted)
        else:
            yield from self._scan_halves(handle.fileno(), wanted, split)

    @property
    def _jsonl(self) -> bool:
        return self.path.suffix.lower() in (".jsonl", ".ndjson")

    def _start(self, handle: IO[str]) -> tuple[Format, int, str]:
        """Read the header (CSV) or the first object (JSON Lines): the way to read the rest, the
        number of the last line read, and the text still to be read as records."""
        path = str(self.path)
        limit = slow.MAX_RECORD if self._jsonl else HEADER_LIMIT
        number = 0
        while True:
            line = handle.readline(limit + 1)
            number += lines_in(line)
            if len(line) > limit:
                raise SnapshotError(f"{path}:{number}: not a mailbox snapshot: line too long")
            if not self._jsonl or not line or line.strip():
                break
        if not self._jsonl:
            header = read_header(csv.reader([line]), path)
            records = functools.partial(slow.csv_records, header=header, path=path)
            return Format(FastRows(header, self.editions), records, quoted=True), number, ""
        if not line:
            raise SnapshotError(f"{path}: empty file, not a snapshot")
        pattern = fast_rows(line, path, number, self.editions)
        records = functools.partial(slow.json_records, path=path)
        return Format(pattern, records, quoted=False), number - lines_in(line), line

    def _scan(
        self, handle: IO[str], wanted: Wanted, start: tuple[Format, int, str] | None = None
    ) -> Generator[Mailbox, None, int]:
        """The records after the header (or after line `start[1]`, with the format `start[0]`:
        a part of a file split in two); returns the number of the last line read."""
        form, last, first = start or self._start(handle)
        scan = Scan(
            self, form.pattern, form.records, form.quoted, wanted,
            self.editions, self.default_locale,
        )  # fmt: skip
        if first:
            yield from scan.block(last, first)
            last += lines_in(first)
        reader = Blocks(
            handle.read, handle.readline, last, form.quoted, slow.MAX_RECORD, blocks.BLOCK
        )
        for item in reader:
            if isinstance(item, Overlong):
                reason = f"longer than {slow.MAX_RECORD} characters"
                self.reject(RowError(str(self.path), item.line, "", reason))
                continue
            yield from scan.block(*item)
        return reader.last

    def _settle(self, handle: IO[str], census: list[int]) -> None:
        """The second pass, taken only when some hash repeats: it reads only the blocks that
        hold the lines in `census`, and notes which rows repeat which id, which account."""
        form, last, first = self._start(handle)
        found: list[Found] = []
        scan = Scan(
            Tally(self.path), form.pattern, form.records, form.quoted, Wanted(),
            self.editions, self.default_locale, census, found,
        )  # fmt: skip
        if first:
            collections.deque(scan.block(last, first), maxlen=0)
            last += lines_in(first)
        reader = Blocks(
            handle.read, handle.readline, last, form.quoted, slow.MAX_RECORD, blocks.BLOCK
        )
        for item in reader:
            if not isinstance(item, Overlong) and bisect.bisect_right(
                census, reader.last
            ) > bisect.bisect_right(census, item[0]):
                collections.deque(scan.block(*item), maxlen=0)
        settle(self, found)

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
            with part_of(fd, 0, cut, "utf-8-sig") as handle:
                start = self._start(handle)
                last = yield from self._scan(handle, wanted, start)
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
            with part_of(fd, cut, None, "utf-8") as handle:
                yield from self._scan(handle, wanted, (start[0], last, ""))
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
            with part_of(fd, 0, None, "utf-8-sig") as handle:
                form = self._start(handle)[0]
            half = Snapshot(self.path, self.editions, self.default_locale)
            half.spill_to(returned)
            with part_of(fd, cut, None, "utf-8") as handle:
                rows = half._scan(handle, wanted, (form, breaks, ""))
                places = [returned.put(chunk) for chunk in batched(rows, SENT)]
            found = (places, half.claims(returned), half)
        sender.send(found)
        sender.close()


def _open(path: Path) -> IO[str]:
    """Open as UTF-8 text after ruling out files that are not snapshots at all.

    Undecodable bytes are kept as surrogates so that one bad row is reported, not the whole file.
    A NUL byte rejects its row only, unless the file is binary: one in its first line, or NUL
    bytes making up an eighth of its first 4 KiB (UTF-16, archives, images).
    """
    try:
        raw = path.open("rb")
        head = raw.read(4096)
        raw.seek(0)
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
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def taken_at(path: Path) -> datetime:
    """When the export was written: deductions after it cannot be in its balances."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)
