"""What no snapshot may do to the reader: a row of any length costs a bounded amount of memory, a
NUL byte costs its row (a binary file is still refused), and an identifier cannot hide text."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path
from unittest import mock

import pytest
from test_snapshot import EDITIONS, read, row, write

from renewd.core.errors import SnapshotError
from renewd.snapshot import blocks, jsonl, slow
from renewd.snapshot.rows import INVISIBLE

HEADER = "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,email"


def good(n: int) -> str:
    return f"mb-{n},acct-{n},standard,2026-12-04,true,500,120,CNY,mb-{n}@example.com\n"


# The peak of this process's own memory: ru_maxrss would also count the pytest process it was
# spawned from (Linux keeps the larger of the two across exec).
READ_IN_A_CHILD = """
import json, re, sys
from pathlib import Path
from renewd.snapshot.reader import Snapshot
snap = Snapshot(Path(sys.argv[1]), frozenset({"standard"}), "en")
found = [m.mailbox_id for m in snap]
errors = [[e.line, e.reason] for e in snap.errors]
peak = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())
print(json.dumps([found, errors, int(peak.group(1)) // 1024]))
"""


@pytest.mark.parametrize(
    ("middle", "line"),
    [
        pytest.param("mb-2,acct-2,", 3, id="one-long-line"),
        pytest.param('mb-2,acct-2,"', 4, id="a-quote-that-never-closes"),  # to the end of file
    ],
)
def test_a_row_of_128_mb_is_rejected_without_being_held(
    tmp_path: Path, middle: str, line: int
) -> None:
    """Peak memory in a child process: what the reader holds is a block and a piece of a row
    (a mebibyte each), never the row, which held once would take 128 MB more."""
    path = tmp_path / "s.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER + "\n" + good(1) + middle)
        for _ in range(128):
            f.write("x" * (1 << 20))
        f.write("\n" + good(3))
    done = subprocess.run(
        [sys.executable, "-c", READ_IN_A_CHILD, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    found, errors, peak = json.loads(done.stdout)
    assert found == (["mb-1", "mb-3"] if line == 3 else ["mb-1"])
    assert errors == [[line, f"longer than {slow.MAX_RECORD} bytes"]]
    assert peak < 100, f"peak RSS {peak} MB"  # about 60 MB: the imports, a block, a piece


@pytest.mark.parametrize("block", [7, 64, blocks.BLOCK])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_a_row_just_over_the_limit_is_rejected_at_its_line(
    tmp_path: Path, block: int, newline: str
) -> None:
    """Rows at the limit, one byte over and one under, whatever the line ends and block size."""
    rows = [good(n).rstrip("\n") for n in range(1, 5)]
    limit = len(rows[0]) + len(newline)
    rows[1] += "x"  # one byte over
    rows[2] = rows[2].replace("acct-3", "acct3")  # one under
    path = tmp_path / "s.csv"
    path.write_bytes((HEADER + newline + newline.join(rows) + newline).encode())
    with mock.patch.object(slow, "MAX_RECORD", limit), mock.patch.object(blocks, "BLOCK", block):
        mailboxes, snap = read(path)
    assert [m.line for m in mailboxes] == [2, 4, 5]
    assert [(e.line, e.field) for e in snap.errors] == [(3, "")]


def test_a_nul_byte_early_in_the_file_rejects_only_its_row(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "\n" + good(1) + good(2).replace("acct", "ac\0ct") + good(3))
    mailboxes, snap = read(path)
    assert [m.mailbox_id for m in mailboxes] == ["mb-1", "mb-3"]
    assert [(e.line, e.field) for e in snap.errors] == [(3, "account_id")]
    assert "U+0000" in snap.errors[0].reason


@pytest.mark.parametrize(
    "content",
    [
        pytest.param((HEADER + "\n").encode("utf-16"), id="utf-16"),
        pytest.param(HEADER.encode()[:20] + b"\0" + HEADER.encode()[20:] + b"\n", id="in-header"),
        pytest.param((HEADER + "\n").encode() + b"\0" * 600 + b"\n", id="mostly-nul"),
        pytest.param(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4, id="gzip"),
    ],
)
def test_a_binary_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(content)
    with pytest.raises(SnapshotError, match="binary data"):
        read(path)


def test_every_control_and_format_character_is_in_the_class() -> None:
    """INVISIBLE is spelled out (building it at import time costs a second); it must hold every
    Cc, Cf, Zl and Zp code point this Python knows."""
    missing = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp") and not _in_class(chr(code))
    ]
    assert missing == []


def _in_class(char: str) -> bool:
    import re

    return re.fullmatch(f"[{INVISIBLE}]", char) is not None


HIDING = [
    ("mailbox_id", "mb-\u202e1", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("mailbox_id", "\u200bmb-1", "U+200B ZERO WIDTH SPACE"),
    ("mailbox_id", "mb-\x851", "U+0085"),
    ("account_id", "acct\u2066-1", "U+2066 LEFT-TO-RIGHT ISOLATE"),
    ("account_id", "acct-1\u2028", "U+2028 LINE SEPARATOR"),
    ("email", "us\u200der@example.com", "U+200D ZERO WIDTH JOINER"),
    ("email", "王\ufeff@example.cn", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
@pytest.mark.parametrize(("field", "value", "named"), HIDING)
def test_identifiers_and_addresses_cannot_hide_characters(
    tmp_path: Path, suffix: str, field: str, value: str, named: str
) -> None:
    rows = [row("mb-0"), {**row("mb-1"), field: value}, row("mb-2", account_id="账户-2")]
    mailboxes, snap = read(write(tmp_path / f"s{suffix}", rows))
    assert [m.mailbox_id for m in mailboxes] == ["mb-0", "mb-2"]
    [error] = snap.errors
    assert error.field == field and named in error.reason, error.reason
    assert "control characters and invisible format characters" in error.reason


def test_json_lines_with_hidden_characters_spelled_as_escapes_are_caught_too(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.jsonl"
    line = json.dumps(row("mb-\u202e1"), ensure_ascii=True)  # "mb-\\u202e1" in the file
    path.write_text(json.dumps(row("mb-0")) + "\n" + line + "\n", encoding="utf-8")
    mailboxes, snap = read(path)
    assert [m.mailbox_id for m in mailboxes] == ["mb-0"]
    assert [(e.line, e.field) for e in snap.errors] == [(2, "mailbox_id")]


def test_editions_are_still_checked_against_the_policy(tmp_path: Path) -> None:
    assert "standard" in EDITIONS
    _, snap = read(write(tmp_path / "s.csv", [row("mb-1", edition="stan\u200bdard")]))
    assert [e.field for e in snap.errors] == ["edition"]


def test_a_bad_first_json_line_still_sets_the_pattern_for_the_rest(tmp_path: Path) -> None:
    """The first line's keys make the fast pattern, whatever its values: a bad value there
    must not send every other line the slow way, nor let a bad one through."""
    rows = [row("mb-0", balance="-1"), row("mb-1"), row("mb-2", currency="usd"), row("mb-3")]
    path = write(tmp_path / "s.jsonl", rows)
    first = path.read_text(encoding="utf-8").split("\n")[0]
    assert jsonl.fast_rows(first, str(path), 1, EDITIONS) is not None
    mailboxes, snap = read(path)
    assert [m.line for m in mailboxes] == [2, 4]
    assert [(e.line, e.field) for e in snap.errors] == [(1, "balance"), (3, "currency")]
