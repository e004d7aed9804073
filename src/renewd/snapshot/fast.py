"""The fast way: one regular expression, built for the file's header, checks a whole block
of CSV rows at once; it accepts a subset of what `rows.parse_row` accepts, never more.
"""

from __future__ import annotations

import re

from renewd.snapshot.currencies import pattern

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
    "currency": pattern(),  # the very codes parse_row accepts
    # every length bounded within the slow way's limits (128, 254 and 253), without lookahead
    "email": r"[^@\s,\x00-\x1f\x7f\ud800-\udfff]{1,64}+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,120}[A-Za-z0-9])?\.[A-Za-z]{2,63}",
    "renewal_months": r"(?:120|1[01][0-9]|[1-9][0-9]?)?",
    "anchor_day": r"(?:3[01]|[12][0-9]|[1-9])?",
    "phone": r"(?:\+[1-9][0-9]{6,14}+)?",
    "locale": r"(?:[a-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,8})?",
    "domain": r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,59}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,63})?",
    "domain_via_provider": f"(?:{_BOOL_TEXT})?",
    "domain_expires_on": f"(?:{_DATE_TEXT})?",
}

_OTHER = r"[^,\r\n]*"  # a column renewd does not read


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
