"""A snapshot's bytes in blocks of whole records, never holding more than a block and one record.

A CSV record ends at the first line end where its quote characters balance (so no part of a
quoted field is ever read as a record of its own, whatever else the record holds); a JSON Lines
record is one line. Lines end with LF, CR LF or a lone CR, as the csv module counts them. A record
longer than `limit` bytes is read in pieces and dropped: only where it ends is reported.

Blocks are read from the open file with pread, so where each one starts is known (the second
pass reads only the blocks it needs) and several readers may share the file. A block ends at a
line end, so it decodes alone; bytes that are not UTF-8 become lone surrogates, reported per row.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK = 1 << 18  # bytes read at once, then extended to the end of a record

ENDS = (b"\n", b"\r")
_END = re.compile(rb"[\r\n]")
_PEEK = 1 << 12  # bytes read to find the end of a line, at first


@dataclass(frozen=True)
class Overlong:
    """A record longer than the limit, and the number of its last line."""

    line: int


@dataclass(frozen=True)
class Block:
    """Whole records: the number of the line before them, their text, where their bytes are."""

    before: int
    text: str
    start: int
    end: int


def lines_in(text: str) -> int:
    """Physical lines in `text`, which starts at the start of a line."""
    ends = text.count("\n")
    if "\r" in text:
        ends += text.count("\r") - text.count("\r\n")
    return ends + (bool(text) and not text.endswith(("\n", "\r")))


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _line_start(data: bytes, end: int) -> int:
    """Where the line that ends at `end` (after its line end, if it has one) starts."""
    end -= 2 if data.endswith(b"\r\n", 0, end) else data.endswith(ENDS, 0, end)
    return max(data.rfind(b"\n", 0, end), data.rfind(b"\r", 0, end)) + 1


@dataclass
class Blocks:
    """Iterate for each Block of whole records in bytes `position` to `stop` of the open file
    `fd`, the first record after line `last`, and an Overlong for each record over `limit`
    bytes. Only the last record of the file can be unfinished, which the csv module reads as
    it is. The reader of a block may set `last` to the number of its last line (it counts them
    anyway); if it does not, they are counted here.
    """

    fd: int
    position: int
    stop: int
    last: int
    quoted: bool  # CSV: a record runs on while its quotes do not balance
    limit: int
    size: int = BLOCK

    def __iter__(self) -> Iterator[Block | Overlong]:
        while block := self._read(min(self.size, self.limit)):
            start = self.position - len(block)
            if not block.endswith(b"\n"):
                block += self.readline(self.limit + 1)  # the end of its last line (or CR LF)
            quotes = block.count(b'"') if self.quoted and b'"' in block else 0  # `in`: memchr
            if len(block) <= self.limit and not quotes % 2:  # whole records, none too long
                yield from self._emit(block, start)
                continue
            record = self._last_record(block, quotes)
            if quotes % 2:
                block = self._extend(block, record)
            if len(block) - record <= self.limit:
                yield from self._emit(block, start)
                continue
            if record:
                yield from self._emit(block[:record], start)
            yield Overlong(self._past(block[record:]))

    def readline(self, limit: int) -> bytes:
        """The rest of the current line with its line end (CR LF whole), at most about `limit`
        bytes of it."""
        parts: list[bytes] = []
        size = 0
        while size < limit and (data := self._peek(min(_PEEK << len(parts), limit - size))):
            end = _END.search(data)
            if end is None:
                parts.append(data)
                size += len(data)
                self.position += len(data)
                continue
            cut = end.end()
            if data.endswith(b"\r", 0, cut) and self._peek(cut + 1)[cut:] == b"\n":
                cut += 1
            parts.append(data[:cut])
            self.position += cut
            break
        return b"".join(parts)

    def _peek(self, size: int) -> bytes:
        return os.pread(self.fd, max(0, min(size, self.stop - self.position)), self.position)

    def _read(self, size: int) -> bytes:
        data = self._peek(size)
        self.position += len(data)
        return data

    def _emit(self, data: bytes, start: int) -> Iterator[Block]:
        text = decode(data)
        before = self.last
        yield Block(before, text, start, start + len(data))
        if self.last == before:  # every block has a line
            self.last += lines_in(text)

    def _last_record(self, data: bytes, quotes: int) -> int:
        """Where the last record of `data` starts: after its last line end (before the end)
        where the `quotes` in `data` before it balance."""
        end = len(data)
        while end:
            start = _line_start(data, end)
            if self.quoted:
                quotes -= data.count(b'"', start, end)
            if not quotes % 2:
                return start
            end = start
        return 0

    def _extend(self, data: bytes, start: int) -> bytes:
        """Lines added until the last record's quotes balance, it is too long, or the file ends."""
        parts, size, quotes = [data], len(data) - start, data.count(b'"', start)
        while quotes % 2 and size <= self.limit:
            line = self.readline(self.limit + 1)
            if not line:
                break
            parts.append(line)
            size, quotes = size + len(line), quotes + line.count(b'"')
        return b"".join(parts)

    def _past(self, head: bytes) -> int:
        """Read on to the end of a record too long to keep, which starts with `head`; returns
        the number of its last line."""
        quotes = head.count(b'"') if self.quoted else 0
        lines = head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n")
        ended = head.endswith(ENDS)
        while not ended or quotes % 2:
            piece = self.readline(self.limit + 1)
            if not piece:
                lines += not ended  # the end of the file ends the last line
                break
            ended = piece.endswith(ENDS)
            lines += ended
            quotes += piece.count(b'"') if self.quoted else 0
        self.last += lines
        return self.last
