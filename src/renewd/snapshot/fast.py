"""The fast way for CSV: one regular expression, built for the file's header, checks a whole block
of lines at once; it accepts a subset of what `rows.parse_row` accepts, never more.
"""

from __future__ import annotations

import csv
import re

from renewd.snapshot.pattern import CAPTURED, Pattern

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
    "phone": r"(?:\+[1-9][0-9]{6,14}+)?",
    "locale": r"(?:[a-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,8})?",
    "domain": r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,59}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,63})?",
    "domain_via_provider": f"(?:{BOOL_TEXT})?",
    "domain_expires_on": f"(?:{DATE_TEXT})?",
}

# A column renewd does not read: anything on one line, quoted (doubled quotes inside) or not.
_OTHER = r'(?:"(?:[^"\r\n]|"")*+"|[^,"\r\n]*+)'


def editions_pattern(editions: frozenset[str]) -> str:
    return "|".join(re.escape(e) for e in sorted(editions)) or "(?!)"


class FastRows(Pattern):
    """Checks CSV lines with one regular expression built for the file's header: each field
    bare or in quotes, the captured ones through a backreference to their opening quote."""

    def __init__(self, header: list[str], editions: frozenset[str]) -> None:
        self.header = header
        patterns = {**FAST, "edition": editions_pattern(editions)}
        fields: list[str] = []
        for name in header:
            if name in CAPTURED:
                quote = f"q{len(fields)}"
                value = f"(?P<{CAPTURED[name]}>{patterns[name]})"
                fields.append(f'(?P<{quote}>"?){value}(?P={quote})')
            elif name in patterns:
                fields.append(f'(?:"(?:{patterns[name]})"|{patterns[name]})')
            else:
                fields.append(_OTHER)
        absent = "".join(f"(?P<{CAPTURED[c]}>)" for c in CAPTURED if c not in header)
        super().__init__(",".join(fields) + absent)

    def fields(self, text: str) -> dict[str, str]:
        line = text.rstrip("\r\n")
        values = next(csv.reader([line])) if '"' in line else line.split(",")
        return dict(zip(self.header, values, strict=True))
