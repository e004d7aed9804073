"""The slow way: lines the fast pattern did not take, read record by record by the csv module
(or json), so that each bad row can be reported with its line, field and reason.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from renewd.core.model import RowError
from renewd.snapshot import jsonl

MAX_RECORD = 1 << 20  # characters; a longer record is rejected whole, never held (`Blocks`)

csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD))

Record = tuple[int, dict[str, str] | RowError]  # line, and its fields or why it is no row


def csv_records(text: str, number: int, header: list[str], path: str) -> Iterator[Record]:
    """The records of `text` (whole records after line `number`), as the csv module reads them.

    A line with quotes is read with the lines its quoted fields run over: they are gathered
    until the quotes balance, whatever the csv module would make of them, so no part of a
    quoted field can ever be read as a row of its own.
    """
    lines = io.StringIO(text, newline="")
    for line in lines:
        number += 1
        if '"' in line:
            chunk, quotes = [line], line.count('"')
            while quotes % 2 and (following := lines.readline()):
                chunk.append(following)
                quotes += following.count('"')
            yield from _quoted("".join(chunk), number, header, path)
            number += len(chunk) - 1
            continue
        bare = line.rstrip("\r\n")
        if bare:  # a line without quotes is split on commas, exactly as the csv module would
            yield number, _fields(bare.split(","), header, number, path)


def _quoted(text: str, number: int, header: list[str], path: str) -> Iterator[Record]:
    """The records of lines with quotes, the first of them line `number`."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = number + reader.line_num - 1
            yield line, RowError(path, line, "", f"malformed CSV: {exc}")
            continue
        if values:
            line = number + reader.line_num - 1
            yield line, _fields(values, header, line, path)


def _fields(
    values: list[str], header: list[str], line: int, path: str
) -> dict[str, str] | RowError:
    if len(values) != len(header):
        return RowError(path, line, "", f"expected {len(header)} fields, found {len(values)}")
    return dict(zip(header, values, strict=True))


def json_records(text: str, number: int, path: str) -> Iterator[Record]:
    """The records of JSON Lines `text`, one per line that is not blank."""
    for line in io.StringIO(text, newline=""):
        number += 1
        if line.strip():
            yield number, jsonl.row(line, number, path)
