"""What the fast ways (CSV and JSON Lines) share: a block of lines checked by one findall, each
line either a valid row, with the values every row is counted by, or a line for the slow way.
"""

from __future__ import annotations

import re
from itertools import compress
from operator import not_

from renewd.snapshot.rows import INVISIBLE

# The values read from every valid row (for the counts, the duplicate and the account checks,
# and to pick the rows some rule can reach), by column and the name of their group.
CAPTURED = {
    "mailbox_id": "id",
    "account_id": "account",
    "expires_on": "expiry",
    "domain_expires_on": "domain",
    "balance": "balance",
    "currency": "currency",
    "email": "email",
}

_HIDDEN = re.compile(f"[{INVISIBLE}]")

Column = tuple[str, ...]


def compile_block(row: str) -> re.Pattern[str]:
    return re.compile(f"^(?:{row}\\r?\\n|[^\\n]*\\n)", re.MULTILINE)


class Pattern:
    """`block_for(text).findall(text)` gives one tuple per line of `text` that ends with LF: the
    values captured from a valid row, at the indices `id`, `expiry`, ... (the same in every
    pattern of one file); all empty for a line the slow way must read (an id is never empty).
    """

    def __init__(self, row: str) -> None:
        self.block = compile_block(row)
        groups = self.block.groupindex
        self.id, self.account, self.expiry, self.domain, self.balance, self.currency, self.email = (
            groups[name] - 1 for name in CAPTURED.values()
        )

    def block_for(self, text: str) -> re.Pattern[str]:
        """The pattern for this block of lines."""
        return self.block

    def fields(self, text: str) -> dict[str, str]:
        """The fields of a line the pattern accepted, as the slow way reads them."""
        raise NotImplementedError

    def hidden(self, columns: list[Column]) -> set[int]:
        """Rows whose identifiers or address hold a format character (bidi, zero-width): too
        costly to exclude in the pattern, so looked for in the few values that are not ASCII."""
        found: set[int] = set()
        for column in (columns[self.id], columns[self.account], columns[self.email]):
            wide = compress(range(len(column)), map(not_, map(str.isascii, column)))
            found.update(n for n in wide if _HIDDEN.search(column[n]))
        return found
