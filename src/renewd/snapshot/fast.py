"""The fast way for CSV: one regular expression, built for the file's header, checks a whole block
of lines at once; it accepts a subset of what `rows.parse_row` accepts, never more.
"""

from __future__ import annotations

import csv
import re

from renewd.snapshot.pattern import CAPTURED, Pattern, compile_block

# No comma, quote, control character, soft hyphen or undecodable byte. Other format characters
# (bidi, zero-width) are rarer and costly to spell out in a class: `Pattern` looks for them in
# the few non-ASCII values it captures.
_SAFE = r'[^,"\x00-\x1f\x7f-\x9f\xad\ud800-\udfff]'

# Case variants spelled out: (?i:...) costs more per row, and other spellings go the slow way.
BOOL_TEXT = r"(?:true|false|TRUE|FALSE|True|False|1|0|yes|no)"

# Real days only, 29 February of leap years included (every fourth year, but not 1900 or 2100).
DATE_TEXT = (
    r"(?!0000)[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29"
)

AMOUNT = r"[0-9]{1,15}+(?:\.[0-9]{1,6}+)?"

# Every length bounded within the slow way's limits (128, 254 and 253), without lookahead.
EMAIL = r"@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,120}[A-Za-z0-9])?\.[A-Za-z]{2,63}"

# One pattern per column, each accepting a subset of what parse_row accepts and never a comma,
# a quote or a line break, so that a whole row can be checked by one match of the fields joined
# with commas (each field bare or in quotes), and a block of rows by one findall. Possessive
# repeats (`{m,n}+`) where what follows cannot be matched by the repeat anyway: the same rows,
# without backtracking state.
FAST = {
    "mailbox_id": _SAFE + "{1,128}+",
    "account_id": _SAFE + "{1,128}+",
    "expires_on": DATE_TEXT,
    "auto_renew": BOOL_TEXT,
    "balance": AMOUNT,
    "renewal_fee": AMOUNT,
    "currency": r"[A-Z]{3}",
    "email": r'[^@\s,"\x00-\x1f\x7f-\x9f\xad\ud800-\udfff]{1,64}+' + EMAIL,
    "renewal_months": r"(?:120|1[01][0-9]|[1-9][0-9]?)?",
    "anchor_day": r"(?:3[01]|[12][0-9]|[1-9])?",
    "phone": r"(?:\+[1-9][0-9]{6,14}+)?",
    "locale": r"(?:[a-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,8})?",
    "domain": r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,59}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,63})?",
    "domain_via_provider": f"(?:{BOOL_TEXT})?",
    "domain_expires_on": f"(?:{DATE_TEXT})?",
}

# A column renewd does not read: anything on one line, bare, or quoted (doubled quotes inside).
_BARE = r'[^,"\r\n]*+'
_OTHER = r'(?:"(?:[^"\r\n]|"")*+"|[^,"\r\n]*+)'

# One field of a line, to see which columns an exporter quotes.
_CELL = re.compile(r'("(?:[^"\r\n]|"")*+")|[^,"\r\n]*+')

KEPT_PATTERNS = 16  # ways of quoting compiled for one file, at most


def editions_pattern(editions: frozenset[str]) -> str:
    return "|".join(re.escape(e) for e in sorted(editions)) or "(?!)"


class FastRows(Pattern):
    """Checks CSV lines with a regular expression built for the file's header and for the way
    its exporter quotes: a block without quote characters gets one without quotes; any other,
    one that expects renewd's columns quoted as on the block's first line (other columns either
    way). A line quoted otherwise goes the slow way."""

    def __init__(self, header: list[str], editions: frozenset[str]) -> None:
        self.header = header
        self._patterns = {**FAST, "edition": editions_pattern(editions)}
        super().__init__(self._row(None, wide=True))
        self._compiled: dict[tuple[frozenset[str] | None, bool], re.Pattern[str]] = {}

    def block_for(self, text: str) -> re.Pattern[str]:
        quoted = self._quoting(text[: text.find("\n")]) if '"' in text else None
        key = (quoted, not text.isascii())
        found = self._compiled.get(key)
        if found is None:
            if len(self._compiled) >= KEPT_PATTERNS:
                self._compiled.clear()
            found = self._compiled[key] = compile_block(self._row(*key))
        return found

    def _row(self, quoted: frozenset[str] | None, wide: bool) -> str:
        """The pattern of a row whose columns `quoted` are in quotes (None: no quotes at all).
        Only in a block that is not all ASCII (`wide`) is the address captured: a hidden
        character can only be there."""
        fields: list[str] = []
        for name in self.header:
            pattern = self._patterns.get(name)
            if pattern is None:
                fields.append(_BARE if quoted is None else _OTHER)
                continue
            group = CAPTURED.get(name)
            if group == "email" and not wide:
                pattern = f"(?P<email>)(?:{pattern})"  # the same groups, in the same places
            elif group:
                pattern = f"(?P<{group}>{pattern})"
            else:
                pattern = f"(?:{pattern})"
            fields.append(f'"{pattern}"' if quoted and name in quoted else pattern)
        absent = "".join(f"(?P<{CAPTURED[c]}>)" for c in CAPTURED if c not in self.header)
        return ",".join(fields) + absent

    def _quoting(self, line: str) -> frozenset[str]:
        """The columns renewd reads that are quoted on this line."""
        quoted, position = set(), 0
        for name in self.header:
            cell = _CELL.match(line, position)
            assert cell is not None  # noqa: S101 - it matches the empty string anywhere
            if cell.group(1) and name in self._patterns:
                quoted.add(name)
            position = cell.end() + 1
        return frozenset(quoted)

    def fields(self, text: str) -> dict[str, str]:
        line = text.rstrip("\r\n")
        values = next(csv.reader([line])) if '"' in line else line.split(",")
        return dict(zip(self.header, values, strict=True))
