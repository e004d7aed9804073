"""A snapshot's text in blocks of whole records, never holding more than a block and one record.

A CSV record ends at the first line end where its quote characters balance (so no part of a
quoted field is ever read as a record of its own, whatever else the record holds); a JSON Lines
record is one line. Lines end with LF, CR LF or a lone CR, as the csv module counts them. A record
longer than `limit` characters is read in pieces and dropped: only where it ends is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

BLOCK = 1 << 18  # characters read at once, then extended to the end of a record

ENDS = ("\n", "\r")

Read = Callable[[int], str]


@dataclass(frozen=True)
class Overlong:
    """A record longer than the limit, and the number of its last line."""

    line: int


def lines_in(text: str) -> int:
    """Physical lines in `text`, which starts at the start of a line."""
    ends = text.count("\n")
    if "\r" in text:
        ends += text.count("\r") - text.count("\r\n")
    return ends + (bool(text) and not text.endswith(ENDS))


def _line_start(text: str, end: int) -> int:
    """Where the line that ends at `end` (after its line end, if it has one) starts."""
    end -= 2 if text.endswith("\r\n", 0, end) else text.endswith(ENDS, 0, end)
    return max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1


@dataclass
class Blocks:
    """Iterate for (number of the line before it, text) per block of whole records read after
    line `last`, and an Overlong for each record over `limit` characters. Only the last record
    of a block can be unfinished: at the end of the file, which the csv module reads as it is.
    """

    read: Read
    readline: Read
    last: int
    quoted: bool  # CSV: a record runs on while its quotes do not balance
    limit: int
    size: int = BLOCK
    _after_return: bool = False  # the text so far ended with CR: a LF next ends that line

    def __iter__(self) -> Iterator[tuple[int, str] | Overlong]:
        while block := self._next():
            if not block.endswith("\n"):
                block += self.readline(self.limit + 1)  # the end of its last line (or CR LF)
            start = self._last_record(block)
            if self._odd(block):
                block = self._extend(block, start)
            if len(block) - start <= self.limit:
                yield self._emit(block)
                continue
            if start:
                yield self._emit(block[:start])
            yield Overlong(self._past(block[start:]))

    def _next(self) -> str:
        block = self.read(min(self.size, self.limit))
        after_return, self._after_return = self._after_return, False
        if after_return and block.startswith("\n"):
            block = block[1:] or self._next()
        return block

    def _emit(self, text: str) -> tuple[int, str]:
        before, self.last = self.last, self.last + lines_in(text)
        self._after_return = text.endswith("\r")
        return before, text

    def _odd(self, text: str) -> bool:
        return self.quoted and text.count('"') % 2 == 1

    def _last_record(self, block: str) -> int:
        """Where the last record of `block` starts: after its last line end (before the end)
        where the quotes balance."""
        quotes = block.count('"') if self.quoted else 0
        end = len(block)
        while end:
            start = _line_start(block, end)
            if self.quoted:
                quotes -= block.count('"', start, end)
            if not quotes % 2:
                return start
            end = start
        return 0

    def _extend(self, block: str, start: int) -> str:
        """Lines added until the last record's quotes balance, it is too long, or the file ends."""
        parts, size, quotes = [block], len(block) - start, block.count('"', start)
        while quotes % 2 and size <= self.limit:
            line = self.readline(self.limit + 1)
            if not line:
                break
            parts.append(line)
            size, quotes = size + len(line), quotes + line.count('"')
        return "".join(parts)

    def _past(self, head: str) -> int:
        """Read on to the end of a record too long to keep, which starts with `head`; returns
        the number of its last line."""
        quotes = head.count('"') if self.quoted else 0
        lines = head.count("\n") + head.count("\r") - head.count("\r\n")
        piece = head
        while not piece.endswith(ENDS) or quotes % 2:
            following = self.readline(self.limit + 1)
            if not following:
                lines += not piece.endswith(ENDS)
                break
            if following.endswith(ENDS) and not (following == "\n" and piece.endswith("\r")):
                lines += 1
            quotes += following.count('"') if self.quoted else 0
            piece = following
        self.last += lines
        self._after_return = piece.endswith("\r")
        return self.last
