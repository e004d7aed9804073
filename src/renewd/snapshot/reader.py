"""Streaming snapshot readers (CSV with a header, or JSON Lines), one validated Mailbox at a time.

A bad row is reported with its line, field and reason and skipped; the rest is still read. A
file that is not a snapshot at all raises SnapshotError before any row is yielded.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO

from renewd.core.batching import batched
from renewd.core.errors import SnapshotError
from renewd.core.model import Mailbox, RowError
from renewd.snapshot.claims import Claims
from renewd.snapshot.fast import FastRows
from renewd.snapshot.jsonl import jsonl_rows
from renewd.snapshot.rows import BadField, convert, parse_row, read_header, show
from renewd.snapshot.spill import Place, Spill
from renewd.snapshot.split import die_with, part_of, split_point

KEPT_ERRORS = 1000

SENT = 1024  # rows per pickle the other process writes back

# What the other process of a split read sends back: where its rows and hashes are, its counts.
Half = tuple[list[Place], list[list[Place]], "Snapshot"]

MAX_RECORD = 1 << 20  # characters; a longer record is rejected whole, never read in parts

csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD))


@dataclass(frozen=True)
class Wanted:
    """Which rows to build Mailboxes for: `expires_on` or `domain_expires_on` (as written) in
    these sets, or the id in `ids`. `expiry=None` means every row.
    """

    expiry: frozenset[str] | None = None
    domain: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    today: str = "0000-00-00"  # rows with expires_on on or before it are counted in `expired`

    def __call__(self, mailbox_id: str, expires_on: str, domain_expires_on: str) -> bool:
        if self.expiry is None or expires_on in self.expiry or mailbox_id in self.ids:
            return True
        return bool(domain_expires_on) and domain_expires_on in self.domain


BLOCK = 1 << 18  # characters the fast way checks with one findall


class Snapshot:
    """One pass over a snapshot file. Iterate it for valid mailboxes; errors and counts accumulate.

    Rows that repeat a mailbox_id (valid or not) are reported, and the id lands in `duplicates` so
    the caller can take no action at all for that mailbox: which row is right cannot be known.
    Repeats are known only once the scan has ended; until then every valid row is yielded.
    """

    def __init__(self, path: Path, editions: frozenset[str], default_locale: str) -> None:
        self.path = path
        self.editions = editions
        self.default_locale = default_locale
        self.rows_read = 0
        self.rejected = 0
        self.errors: list[RowError] = []
        self.duplicates: set[str] = set()
        # accounts whose rows disagree on balance or currency (filled in by issue 13's check)
        self.conflicting_accounts: set[str] = set()
        self.rejected_ids: set[str] = set()
        self.expired = 0  # valid rows whose expires_on is on or before `Wanted.today`
        # The duplicate check keeps 8 bytes per row, not the ids: hashes that repeat are
        # confirmed by a second pass, which looks only for them (`_census`) and notes where they
        # are (`_found`: line, id, rejected for another reason).
        self._claims = Claims()
        self._census: frozenset[int] | None = None
        self._found: list[tuple[int, str, bool]] = []

    def __iter__(self) -> Iterator[Mailbox]:
        return self.scan()

    def scan(self, wanted: Wanted | None = None) -> Iterator[Mailbox]:
        """Validate every row; build (and yield) a Mailbox only for the rows `wanted` picks.

        Most rows of a big snapshot are nowhere near a step: blocks of CSV lines without quotes
        are checked by one regular expression and only the picked rows are converted. Any other
        line goes the slow way (the csv module, then field by field), which gives the precise
        error; both ways accept exactly the same rows.
        """
        with _open(self.path) as handle:
            yield from self._rows(handle, wanted or Wanted())
            repeated = self._claims.repeats()
            self._claims.close()
            if repeated:
                handle.seek(0)
                self._settle(handle, repeated)

    def _rows(self, handle: IO[str], wanted: Wanted) -> Iterator[Mailbox]:
        if self.path.suffix.lower() in (".jsonl", ".ndjson"):
            yield from self._wanted(jsonl_rows(handle, str(self.path)), wanted)
            return
        # Only a scan that keeps few rows is split: the other half's rows come back pickled.
        selective = wanted.expiry is not None and self._census is None
        split = split_point(handle.fileno()) if selective else None
        if split is None:
            yield from self._scan_csv(handle, wanted)
        else:
            yield from self._scan_halves(handle.fileno(), wanted, split)

    def _scan_halves(self, fd: int, wanted: Wanted, split: tuple[int, int]) -> Iterator[Mailbox]:
        """The file up to byte `split[0]` here, the rest in a forked process at the same time.

        That part has no quote character, so every line is a whole record and the halves read
        exactly as the whole would. Both read the one open file (replacing the file on disk
        changes nothing). If the other process fails, or takes much longer than this half
        took, or this half does not end on line `split[1]`, the rest is read here after all.
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
                header = read_header(csv.reader([handle.readline()]), str(self.path))
                last = yield from self._scan_csv(handle, wanted, header)
            patience = 5 + 2 * (time.monotonic() - started)
            with contextlib.suppress(EOFError, OSError):
                if last == breaks and receiver.poll(patience):
                    half = receiver.recv()
            if half is not None:
                yield from self._merge(half, returned)
                return
            with part_of(fd, cut, None, "utf-8") as handle:
                yield from self._scan_csv(handle, wanted, header, last)
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
        """In the forked process: read from byte `split[0]` on; the rows found and the duplicate
        check's hashes go to `returned`, and where they are goes back with the counts."""
        die_with(parent)
        cut, breaks = split
        found: Half | None = None
        with contextlib.suppress(Exception):  # whatever it was, the parent reads this half
            with part_of(fd, 0, None, "utf-8-sig") as handle:
                header = read_header(csv.reader([handle.readline()]), str(self.path))
            half = Snapshot(self.path, self.editions, self.default_locale)
            half._claims = Claims(returned)
            with part_of(fd, cut, None, "utf-8") as handle:
                rows = half._scan_csv(handle, wanted, header, breaks)
                places = [returned.put(chunk) for chunk in batched(rows, SENT)]
            claimed = half._claims.write(returned)
            half._claims = Claims()
            found = (places, claimed, half)
        sender.send(found)
        sender.close()

    def _merge(self, half: Half, returned: Spill) -> Iterator[Mailbox]:
        places, claimed, other = half
        self.rows_read += other.rows_read
        self.rejected += other.rejected
        self.expired += other.expired
        self.errors += other.errors[: KEPT_ERRORS - len(self.errors)]
        self.rejected_ids |= other.rejected_ids
        self._claims.adopt(claimed, returned)
        for place in places:
            yield from returned.get(place)

    def _settle(self, handle: IO[str], repeated: frozenset[int]) -> None:
        """The second pass, taken only when some hash repeats: which rows repeat which id."""
        census = Snapshot(self.path, self.editions, self.default_locale)
        census._census = repeated
        for _ in census._rows(handle, Wanted(expiry=frozenset())):
            pass
        first: set[str] = set()
        for line, mailbox_id, rejected in census._found:
            if mailbox_id not in first:
                first.add(mailbox_id)
                continue
            self.duplicates.add(mailbox_id)
            reason = f"duplicate mailbox_id {show(mailbox_id)}: no action is taken for this mailbox"
            error = RowError(str(self.path), line, "mailbox_id", reason, mailbox_id)
            if not rejected:
                self.rejected += 1
                self.rejected_ids.add(mailbox_id)
                self.errors.append(error)  # kept or not below, by its line like the others
                continue
            # the row's own defect was reported; that it repeats an id says more
            self.errors = [error if e.line == line else e for e in self.errors]
        # The first KEPT_ERRORS by line: every error left out earlier is below all of these.
        self.errors = sorted(self.errors, key=lambda error: error.line)[:KEPT_ERRORS]

    def _claim(self, ids: list[str], first: int, rejected: bool = False) -> None:
        """Note the ids of rows `first`, `first + 1`, ... for the duplicate check."""
        if self._census is None:
            self._claims.extend(map(hash, ids))
            return
        census = self._census
        self._found += [
            (line, mailbox_id, rejected)
            for line, mailbox_id in enumerate(ids, first)
            if hash(mailbox_id) in census
        ]

    def _scan_csv(
        self, handle: IO[str], wanted: Wanted, header: list[str] | None = None, number: int = 1
    ) -> Generator[Mailbox, None, int]:
        """Rows after line `number` (the header's, unless `header` is given: a part of a file
        split in two); returns the number of the last line read."""
        readline = handle.readline
        if header is None:
            header = read_header(csv.reader([readline()]), str(self.path))
        fast = FastRows(header, self.editions)
        while block := handle.read(BLOCK):
            if not block.endswith("\n"):
                block += readline()  # the end of its last line (none at the end of the file)
            whole = block.endswith("\n") and '"' not in block
            rows = fast.block.findall(block) if whole else []
            if whole and len(rows) == block.count("\n"):
                yield from self._valid(rows, number + 1, fast, header, wanted)
                number += len(rows)
            else:
                number = yield from self._by_line(block, readline, number, fast, header, wanted)
        return number

    def _valid(
        self,
        rows: list[tuple[str, ...]],
        first: int,
        fast: FastRows,
        header: list[str],
        wanted: Wanted,
    ) -> Iterator[Mailbox]:
        """Rows the fast pattern accepted, as (line, id, expires_on, domain_expires_on)."""
        i, e, d = fast.id, fast.expiry, fast.domain
        today, expiry, domain, ids = wanted.today, wanted.expiry, wanted.domain, wanted.ids
        self.rows_read += len(rows)
        self.expired += sum(1 for row in rows if row[e] <= today)
        self._claim([row[i] for row in rows], first)
        picked = (
            list(enumerate(rows, first))
            if expiry is None
            else [
                (line, row)
                for line, row in enumerate(rows, first)
                if row[e] in expiry or row[d] in domain or row[i] in ids
            ]
        )
        for line, row in picked:
            fields = dict(zip(header, row[0].split(","), strict=True))
            yield convert(fields, line, self.default_locale)

    def _by_line(
        self,
        block: str,
        readline: Callable[[], str],
        number: int,
        fast: FastRows,
        header: list[str],
        wanted: Wanted,
    ) -> Generator[Mailbox, None, int]:
        """A block the fast way could not take whole, line by line; returns the last line number.

        A quoted field may run past the block: `_quoted` goes on reading from the file.
        """
        lines = io.StringIO(block, newline="")
        more = itertools.chain(lines, iter(readline, ""))
        for text in lines:
            number += 1
            if '"' in text:
                number, rows = self._quoted(text, more, number, header)
                yield from self._wanted(rows, wanted)
                continue
            found = fast.line.fullmatch(text)
            if found is not None:
                row = (text.rstrip("\r\n"), *found.groups())
                yield from self._valid([row], number, fast, header, wanted)
                continue
            line = text.rstrip("\r\n")
            if line:
                yield from self._wanted([(number, self._split(line, header, number))], wanted)
        return number

    def _split(self, line: str, header: list[str], number: int) -> dict[str, str] | RowError:
        """A line without quotes is split on commas, exactly as the csv module would."""
        return self._fields(line.split(","), header, number)

    def _quoted(
        self, text: str, lines: Iterator[str], number: int, header: list[str]
    ) -> tuple[int, list[tuple[int, dict[str, str] | RowError]]]:
        """A line with quotes, with the lines its quoted fields run over, read by the csv module.

        The lines are gathered until the quotes balance, whatever the csv module would make of
        them, so no part of a quoted field can ever be read as a row of its own. Returns the
        number of the last line gathered and the rows found in them.
        """
        chunk, quotes, last, size = [text], text.count('"'), number, len(text)
        while quotes % 2:
            following = next(lines, None)
            if following is None:
                break
            chunk.append(following)
            last, quotes, size = last + 1, quotes + following.count('"'), size + len(following)
        if size > MAX_RECORD:
            return last, [
                (last, RowError(str(self.path), last, "", f"longer than {MAX_RECORD} characters"))
            ]
        rows: list[tuple[int, dict[str, str] | RowError]] = []
        reader = csv.reader(io.StringIO("".join(chunk), newline=""))
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return last, rows
            except csv.Error as exc:
                line = number + reader.line_num - 1
                rows.append((line, RowError(str(self.path), line, "", f"malformed CSV: {exc}")))
                continue
            line = number + reader.line_num - 1
            if values:
                rows.append((line, self._fields(values, header, line)))

    def _fields(self, values: list[str], header: list[str], line: int) -> dict[str, str] | RowError:
        if len(values) != len(header):
            return RowError(
                str(self.path), line, "", f"expected {len(header)} fields, found {len(values)}"
            )
        return dict(zip(header, values, strict=True))

    def _wanted(
        self, rows: Iterable[tuple[int, dict[str, str] | RowError]], wanted: Wanted
    ) -> Iterator[Mailbox]:
        """The slow way: every field converted, the first bad one reported."""
        for line, row in rows:
            self.rows_read += 1
            mailbox = self._mailbox(line, row)
            if mailbox is None:
                continue
            if mailbox.expires_on.isoformat() <= wanted.today:
                self.expired += 1
            domain = mailbox.domain_expires_on.isoformat() if mailbox.domain_expires_on else ""
            if wanted(mailbox.mailbox_id, mailbox.expires_on.isoformat(), domain):
                yield mailbox

    def _mailbox(self, line: int, row: dict[str, str] | RowError) -> Mailbox | None:
        if isinstance(row, RowError):
            self._reject(row)
            return None
        mailbox_id = row.get("mailbox_id", "")
        try:
            mailbox = parse_row(row, line, self.editions, self.default_locale)
        except BadField as bad:
            self._reject(RowError(str(self.path), line, bad.field, bad.reason, mailbox_id))
            if mailbox_id:
                self._claim([mailbox_id], line, rejected=True)
            return None
        self._claim([mailbox_id], line)
        return mailbox

    def _reject(self, error: RowError) -> None:
        self.rejected += 1
        if error.mailbox_id:
            self.rejected_ids.add(error.mailbox_id)
        if len(self.errors) < KEPT_ERRORS:
            self.errors.append(error)


def _open(path: Path) -> IO[str]:
    """Open as UTF-8 text after ruling out files that are not snapshots at all.

    Undecodable bytes are kept as surrogates so that one bad row is reported, not the whole file.
    """
    try:
        raw = path.open("rb")
        head = raw.read(4096)
        raw.seek(0)
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from exc
    problem = ""
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
        problem = "empty file, not a snapshot"
    elif b"\0" in head:
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
