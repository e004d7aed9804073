"""One block of whole records read into a Tally: the lines the fast pattern takes are counted a
column at a time, and only the rows some rule can reach become Mailboxes; every other line (a bad
row, a record over several lines) goes the slow way alone, never its neighbours.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import not_

from renewd.core.model import Mailbox, RowError
from renewd.snapshot.blocks import lines_in
from renewd.snapshot.pattern import Column, Pattern
from renewd.snapshot.rows import BadField, convert, parse_row
from renewd.snapshot.slow import Record
from renewd.snapshot.tally import Found, Tally


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


Records = Callable[[str, int], Iterator[Record]]  # the slow way: text, line before it


@dataclass
class Scan:
    """Reads blocks (`block`) into `tally`. With `census` (sorted line numbers) it counts and
    yields nothing, and only notes what is on those lines in `found`: the second pass."""

    tally: Tally
    pattern: Pattern | None  # None: every line the slow way
    records: Records
    quoted: bool  # CSV: a record runs on while its quotes do not balance
    wanted: Wanted
    editions: frozenset[str]
    default_locale: str
    census: Sequence[int] | None = None
    found: list[Found] | None = None

    def block(self, before: int, text: str) -> Generator[Mailbox, None, int]:
        """The records of `text`, which starts after line `before`; returns the number of its
        last line."""
        if self.pattern is None:
            return (yield from self._slow(text, before))
        rows = self.pattern.block_for(text).findall(text)
        if not rows:
            return (yield from self._slow(text, before))
        columns: list[Column] = list(zip(*rows, strict=False))  # rows are alike
        lines = text.split("\n")  # each row's line, without its LF; then a last line without
        slow = set(compress(range(len(rows)), map(not_, columns[self.pattern.id])))
        if not text.isascii():
            slow |= self.pattern.hidden(columns)
        done, number = 0, before
        for first in sorted(slow):
            if first < done:
                continue  # read with a record before it
            yield from self._valid(columns, lines, done, first, number)
            number += first - done
            done, piece = self._record(lines, first)
            number = yield from self._slow(piece, number)
        if done < len(rows):
            yield from self._valid(columns, lines, done, len(rows), number)
            number, done = number + len(rows) - done, len(rows)
        if done == len(rows) and lines[-1]:  # a last line not read with a record before it
            number = yield from self._slow(lines[-1], number)
        return number

    def _valid(
        self, columns: list[Column], lines: list[str], start: int, end: int, before: int
    ) -> Iterator[Mailbox]:
        """Rows `start` to `end` of the block, which the pattern accepted."""
        if start >= end:
            return
        p, wanted, tally = self.pattern, self.wanted, self.tally
        assert p is not None  # noqa: S101 - only the fast way gets here
        ids, expiry = columns[p.id][start:end], columns[p.expiry][start:end]
        numbers = range(before + 1, before + 1 + end - start)
        if self.census is not None:
            self._note(columns, start, numbers)
            return
        tally.rows_read += end - start
        tally.expired += sum(map(wanted.today.__ge__, expiry))
        money = zip(columns[p.balance][start:end], columns[p.currency][start:end], strict=True)
        tally.claim(numbers, ids, columns[p.account][start:end], money)
        if wanted.expiry is None:
            picked: Iterable[int] = range(end - start)
        else:
            hits = set(compress(range(end - start), map(wanted.expiry.__contains__, expiry)))
            if wanted.domain:
                domain = columns[p.domain][start:end]
                hits.update(compress(range(end - start), map(wanted.domain.__contains__, domain)))
            if wanted.ids:
                hits.update(compress(range(end - start), map(wanted.ids.__contains__, ids)))
            picked = sorted(hits)
        for n in picked:
            yield convert(p.fields(lines[start + n]), numbers[n], self.default_locale)

    def _note(self, columns: list[Column], start: int, lines: range) -> None:
        p, census, found = self.pattern, self.census, self.found
        assert p is not None and census is not None and found is not None  # noqa: S101
        for line in census[bisect_left(census, lines.start) : bisect_left(census, lines.stop)]:
            n = start + line - lines.start
            found.append(
                Found(
                    line,
                    columns[p.id][n],
                    True,
                    columns[p.account][n],
                    columns[p.balance][n],
                    columns[p.currency][n],
                )
            )

    def _slow(self, text: str, before: int) -> Generator[Mailbox, None, int]:
        """Records the fast pattern did not take; returns the number of their last line."""
        for line, row in self.records(text, before):
            mailbox = self._mailbox(line, row)
            if mailbox is None:
                continue
            if mailbox.expires_on.isoformat() <= self.wanted.today:
                self.tally.expired += 1
            domain = mailbox.domain_expires_on.isoformat() if mailbox.domain_expires_on else ""
            if self.wanted(mailbox.mailbox_id, mailbox.expires_on.isoformat(), domain):
                yield mailbox
        return before + lines_in(text)

    def _mailbox(self, line: int, row: dict[str, str] | RowError) -> Mailbox | None:
        tally = self.tally
        if isinstance(row, RowError):
            if self.census is None:
                tally.reject(row)
            return None
        mailbox_id = row.get("mailbox_id", "")
        try:
            mailbox = parse_row(row, line, self.editions, self.default_locale)
        except BadField as bad:
            if self.census is not None:
                self._noted(line, Found(line, mailbox_id, False))
                return None
            tally.reject(RowError(str(tally.path), line, bad.field, bad.reason, mailbox_id))
            if mailbox_id:
                tally.claim([line], [mailbox_id])
            return None
        money = (row["balance"], row["currency"])
        if self.census is not None:
            self._noted(line, Found(line, mailbox_id, True, mailbox.account_id, *money))
            return None
        tally.rows_read += 1
        tally.claim([line], [mailbox_id], [mailbox.account_id], [money])
        return mailbox

    def _noted(self, line: int, found: Found) -> None:
        census = self.census
        assert census is not None and self.found is not None  # noqa: S101
        if bisect_right(census, line) != bisect_left(census, line) and found.mailbox_id:
            self.found.append(found)

    def _record(self, lines: list[str], first: int) -> tuple[int, str]:
        """The index of the line after the record that starts at line `first` of the block (a
        CSV record runs on while its quotes do not balance; past the last line with LF, to the
        end of the file), and its text."""
        parts = [lines[first] + "\n"]
        quotes = parts[0].count('"') if self.quoted else 0
        end = first + 1
        while quotes % 2 and end < len(lines):
            parts.append(lines[end] + "\n" if end < len(lines) - 1 else lines[end])
            quotes += parts[-1].count('"')
            end += 1
        return end, "".join(parts)
