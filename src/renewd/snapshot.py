"""Streaming snapshot readers (CSV with a header, or JSON Lines), one validated Mailbox at a time.

A bad row is reported with its line, field and reason and skipped; the rest is still read. A
file that is not a snapshot at all raises SnapshotError before any row is yielded.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import io
import itertools
import json
import multiprocessing
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from renewd.batching import batched
from renewd.claims import Claims
from renewd.errors import SnapshotError
from renewd.model import Mailbox, RowError
from renewd.spill import Place, Spill
from renewd.yamlsrc import suggest

REQUIRED = (
    "mailbox_id",
    "account_id",
    "edition",
    "expires_on",
    "auto_renew",
    "balance",
    "renewal_fee",
    "currency",
    "email",
)
OPTIONAL = (
    "renewal_months",
    "phone",
    "locale",
    "domain",
    "domain_via_provider",
    "domain_expires_on",
)
COLUMNS = REQUIRED + OPTIONAL
KEPT_ERRORS = 1000
SENT = 1024  # rows per pickle the other process writes back
# What the other process of a split read sends back: where its rows and hashes are, its counts.
Half = tuple[list[Place], list[list[Place]], "Snapshot"]
MAX_RECORD = 1 << 20  # characters; a longer record is rejected whole, never read in parts
csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD))

# re.ASCII everywhere: \d must not accept Arabic-Indic or fullwidth digits in a phone number.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_MONEY = re.compile(r"-?\d{1,15}(\.\d{1,6})?", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\.[A-Za-z]{2,63}")
_PHONE = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)
_LOCALE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
_DOMAIN = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


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


_SAFE = r"[^,\x00-\x1f\x7f\ud800-\udfff]"
# Case variants spelled out: (?i:...) costs more per row, and other spellings go the slow way.
_BOOL_TEXT = r"(?:true|false|TRUE|FALSE|True|False|1|0|yes|no)"
# Only real days: 29 February goes the slow way, which knows leap years.
_DATE_TEXT = (
    r"(?!0000)[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_AMOUNT = r"[0-9]{1,15}+(?:\.[0-9]{1,6}+)?"
# One pattern per column, each accepting a subset of what parse_row accepts and never a comma
# or a line break, so that a whole row can be checked by one match of the fields joined with
# commas, and a block of rows by one findall. Possessive repeats (`{m,n}+`) where what follows
# cannot be matched by the repeat anyway: the same rows, without backtracking state.
FAST = {
    "mailbox_id": _SAFE + "{1,128}+",
    "account_id": _SAFE + "{1,128}+",
    "expires_on": _DATE_TEXT,
    "auto_renew": _BOOL_TEXT,
    "balance": _AMOUNT,
    "renewal_fee": _AMOUNT,
    "currency": r"[A-Z]{3}",
    # every length bounded within the slow way's limits (128, 254 and 253), without lookahead
    "email": r"[^@\s,\x00-\x1f\x7f\ud800-\udfff]{1,64}+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,120}[A-Za-z0-9])?\.[A-Za-z]{2,63}",
    "renewal_months": r"(?:120|1[01][0-9]|[1-9][0-9]?)?",
    "phone": r"(?:\+[1-9][0-9]{6,14}+)?",
    "locale": r"(?:[a-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,8})?",
    "domain": r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,59}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,63})?",
    "domain_via_provider": f"(?:{_BOOL_TEXT})?",
    "domain_expires_on": f"(?:{_DATE_TEXT})?",
}
_OTHER = r"[^,\r\n]*"  # a column renewd does not read
BLOCK = 1 << 18  # characters the fast way checks with one findall
PR_SET_PDEATHSIG = 1  # prctl(2)
# bytes: a CSV snapshot this big is read by two processes at once (see _split_point)
PARALLEL_FROM = 32 << 20


class FastRows:
    """Checks CSV rows with one regular expression built for the file's header.

    `line` checks one line; `block` finds every valid line of a block, as the tuple (line, id,
    expires_on, domain_expires_on).
    """

    def __init__(self, header: list[str], editions: frozenset[str]) -> None:
        patterns = {**FAST, "edition": "|".join(re.escape(e) for e in sorted(editions)) or "(?!)"}
        captured = {"mailbox_id": "id", "expires_on": "expiry", "domain_expires_on": "domain"}
        fields = [
            f"(?P<{captured[name]}>{patterns[name]})"
            if name in captured
            else f"(?:{patterns.get(name, _OTHER)})"
            for name in header
        ]
        row = ",".join(fields) + ("" if "domain_expires_on" in header else "(?P<domain>)")
        self.line = re.compile(row + r"\r?\n?")
        self.block = re.compile(f"^(?P<line>{row})\\r?\\n", re.MULTILINE)
        groups = self.block.groupindex
        self.id, self.expiry, self.domain = (groups[g] - 1 for g in ("id", "expiry", "domain"))


class BadField(Exception):
    """Raised while converting a row; becomes a RowError."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


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
            yield from self._wanted(_jsonl_rows(handle, str(self.path)), wanted)
            return
        # Only a scan that keeps few rows is split: the other half's rows come back pickled.
        selective = wanted.expiry is not None and self._census is None
        split = _split_point(handle.fileno()) if selective else None
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
            with _part(fd, 0, cut, "utf-8-sig") as handle:
                header = _header(csv.reader([handle.readline()]), str(self.path))
                last = yield from self._scan_csv(handle, wanted, header)
            patience = 5 + 2 * (time.monotonic() - started)
            with contextlib.suppress(EOFError, OSError):
                if last == breaks and receiver.poll(patience):
                    half = receiver.recv()
            if half is not None:
                yield from self._merge(half, returned)
                return
            with _part(fd, cut, None, "utf-8") as handle:
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
        _die_with(parent)
        cut, breaks = split
        found: Half | None = None
        with contextlib.suppress(Exception):  # whatever it was, the parent reads this half
            with _part(fd, 0, None, "utf-8-sig") as handle:
                header = _header(csv.reader([handle.readline()]), str(self.path))
            half = Snapshot(self.path, self.editions, self.default_locale)
            half._claims = Claims(returned)
            with _part(fd, cut, None, "utf-8") as handle:
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
            reason = (
                f"duplicate mailbox_id {_show(mailbox_id)}: no action is taken for this mailbox"
            )
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
            header = _header(csv.reader([readline()]), str(self.path))
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
            yield _convert(fields, line, self.default_locale)

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


def _split_point(fd: int) -> tuple[int, int] | None:
    """Where a second process can start reading a big CSV snapshot, and the line breaks before:
    just after a line end a little past the middle (that process also sends its rows back).

    None for a small file or a single CPU, and when the part before has a quote character (a
    quoted field may hold line breaks, so a line end need not end a record) or a CR that is
    not part of a CR LF (counted apart; not worth it for such rare files).
    """
    size = os.fstat(fd).st_size
    if size < PARALLEL_FROM or len(_cpus()) < 2:
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


def _cpus() -> set[int]:
    affinity = getattr(os, "sched_getaffinity", None)
    return set(affinity(0)) if affinity else set(range(os.cpu_count() or 1))


def _die_with(parent: int) -> None:
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


def _part(fd: int, start: int, end: int | None, encoding: str) -> IO[str]:
    return io.TextIOWrapper(
        io.BufferedReader(_Range(fd, start, end)),
        encoding=encoding,
        errors="surrogateescape",
        newline="",
    )


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


def _header(reader: Any, path: str) -> list[str]:
    try:
        header: list[str] = next(reader)
    except StopIteration:
        raise SnapshotError(f"{path}: empty file, not a snapshot") from None
    except csv.Error as exc:
        raise SnapshotError(f"{path}:1: unreadable header: {exc}") from exc
    _check_header(header, path)
    return header


def _check_header(header: list[str], path: str) -> None:
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        unknown = [h for h in header if h not in COLUMNS]
        hints = "".join(f"; {h!r}{suggest(h, COLUMNS) or ' is unknown'}" for h in unknown[:5])
        raise SnapshotError(
            f"{path}:1: not a mailbox snapshot: missing column(s) {', '.join(missing)}{hints}"
        )
    doubled = {h for h in header if header.count(h) > 1}
    if doubled:
        raise SnapshotError(f"{path}:1: column(s) named twice: {', '.join(sorted(doubled))}")


def _jsonl_rows(handle: IO[str], path: str) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    first = True
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text, parse_float=Decimal)
            problem = "" if isinstance(value, dict) else "not a JSON object"
        except json.JSONDecodeError as exc:
            problem = f"not valid JSON: {exc.msg} at character {exc.pos + 1}"
        except (ValueError, RecursionError):
            problem = "not valid JSON: too deeply nested or malformed"
        if first and problem:
            raise SnapshotError(
                f"{path}:{line}: not a mailbox snapshot: expected a JSON object per line"
            )
        first = False
        if problem:
            yield line, RowError(path, line, "", problem)
            continue
        fields = {str(k): _json_text(v) for k, v in value.items()}
        bad = next((k for k, v in fields.items() if v is None), "")
        if bad:
            yield line, RowError(path, line, bad, "must be a string, number or boolean")
        else:
            yield line, {k: v or "" for k, v in fields.items()}


def _json_text(value: Any) -> str | None:
    """The field as CSV would give it; None for arrays and objects, which no column takes."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return None
    return value if isinstance(value, str) else str(value)


def parse_row(
    row: dict[str, str], line: int, editions: frozenset[str], default_locale: str
) -> Mailbox:
    """Convert one row's text fields into a Mailbox, or raise BadField naming the bad field."""
    edition = _text(row, "edition")
    if edition not in editions:
        raise BadField("edition", f"unknown edition {edition!r}{suggest(edition, editions)}")
    return Mailbox(
        mailbox_id=_text(row, "mailbox_id", limit=128),
        account_id=_text(row, "account_id", limit=128),
        edition=edition,
        expires_on=_date(row, "expires_on"),
        auto_renew=_bool(row, "auto_renew"),
        balance=_money(row, "balance"),
        renewal_fee=_money(row, "renewal_fee"),
        currency=_pattern(row, "currency", _CURRENCY, "a 3-letter currency code such as CNY"),
        renewal_months=_months(row),
        email=_pattern(row, "email", _EMAIL, "an email address"),
        phone=_pattern(
            row, "phone", _PHONE, "an E.164 number such as +8613800138000", required=False
        ),
        locale=_pattern(row, "locale", _LOCALE, "a locale such as en or zh-CN", required=False)
        or default_locale,
        domain=_pattern(row, "domain", _DOMAIN, "a domain name", required=False),
        domain_via_provider=_bool(row, "domain_via_provider", default=False),
        domain_expires_on=_date(row, "domain_expires_on", required=False),
        line=line,
    )


def _convert(row: dict[str, str], line: int, default_locale: str) -> Mailbox:
    """parse_row for a row the fast pattern accepted: every field is valid, only converted."""
    domain_day = row.get("domain_expires_on")
    return Mailbox(
        mailbox_id=row["mailbox_id"],
        account_id=row["account_id"],
        edition=row["edition"],
        expires_on=date.fromisoformat(row["expires_on"]),
        auto_renew=_BOOLS[row["auto_renew"].lower()],
        balance=Decimal(row["balance"]),
        renewal_fee=Decimal(row["renewal_fee"]),
        currency=row["currency"],
        renewal_months=int(row.get("renewal_months") or 12),
        email=row["email"],
        phone=row.get("phone", ""),
        locale=row.get("locale") or default_locale,
        domain=row.get("domain", ""),
        domain_via_provider=_BOOLS.get(row.get("domain_via_provider", "").lower(), False),
        domain_expires_on=date.fromisoformat(domain_day) if domain_day else None,
        line=line,
    )


def _text(row: dict[str, str], field: str, limit: int = 254, required: bool = True) -> str:
    value = row.get(field, "")
    if not value:
        if required:
            raise BadField(field, "missing")
        return ""
    if _UNSAFE.search(value):
        raise BadField(field, "contains control characters or bytes that are not UTF-8")
    if len(value) > limit:
        raise BadField(field, f"longer than {limit} characters")
    return value


def _pattern(
    row: dict[str, str], field: str, pattern: re.Pattern[str], what: str, required: bool = True
) -> str:
    value = _text(row, field, required=required)
    if value and not pattern.fullmatch(value):
        raise BadField(field, f"{_show(value)} is not {what}")
    return value


def _date(row: dict[str, str], field: str, required: bool = True) -> Any:
    value = _text(row, field, required=required)
    if not value:
        return None
    if not _DATE.fullmatch(value):
        raise BadField(field, f"{_show(value)} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadField(field, f"{_show(value)} is not a calendar date") from None


def _bool(row: dict[str, str], field: str, default: bool | None = None) -> bool:
    value = _text(row, field, required=default is None)
    if not value:
        return bool(default)
    try:
        return _BOOLS[value.lower()]
    except KeyError:
        raise BadField(field, f"{_show(value)} is not true or false") from None


def _money(row: dict[str, str], field: str) -> Decimal:
    value = _text(row, field)
    if not _MONEY.fullmatch(value):
        raise BadField(field, f"{_show(value)} is not an amount such as 120.00")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise BadField(field, f"{_show(value)} is not an amount") from None
    if amount.is_signed():
        raise BadField(field, f"{value} is negative")
    return amount


def _months(row: dict[str, str]) -> int:
    value = _text(row, "renewal_months", required=False)
    if not value:
        return 12
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 120:
        raise BadField("renewal_months", f"{_show(value)} is not a whole number from 1 to 120")
    return int(value)


def _show(value: str) -> str:
    """A value quoted for an error message, cut short so hostile input cannot flood the report."""
    return repr(value if len(value) <= 40 else value[:40] + "...")
