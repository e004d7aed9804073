"""JSON Lines snapshots: one object per line, its values turned into the text CSV would hold.

The fast way checks whole blocks of lines with one pattern built from the keys of the first
line (exporters write every line alike); a line written another way goes the slow way, `row`.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from renewd.core.errors import SnapshotError
from renewd.core.model import RowError
from renewd.snapshot.fast import AMOUNT, BOOL_TEXT, DATE_TEXT, EMAIL, FAST, editions_pattern
from renewd.snapshot.pattern import CAPTURED, Pattern
from renewd.snapshot.rows import COLUMNS, REQUIRED

_SAFE = r'[^"\\\x00-\x1f\x7f-\x9f\xad\ud800-\udfff]'
_NUMBER = r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,6})?"  # JSON spells no leading zeros
_OPTIONAL = '|""|null'
_TEXT = {  # the JSON value of each column, where it differs from the CSV field in quotes
    "mailbox_id": f'"(?P<id>{_SAFE}{{1,128}}+)"',
    "account_id": f'"(?P<account>{_SAFE}{{1,128}}+)"',
    "expires_on": f'"(?P<expiry>{DATE_TEXT})"',
    "domain_expires_on": f'"(?P<domain>{DATE_TEXT})"{_OPTIONAL}',
    "auto_renew": f'true|false|"{BOOL_TEXT}"',
    "domain_via_provider": f'true|false|"{BOOL_TEXT}"{_OPTIONAL}',
    "balance": f'(?P<qb>")?(?P<balance>(?(qb){AMOUNT}|{_NUMBER}))(?(qb)")',
    "renewal_fee": f'"{AMOUNT}"|{_NUMBER}',
    "currency": '"(?P<currency>[A-Z]{3})"',
    "email": rf'"(?P<email>[^@\s"\\\x00-\x1f\x7f-\x9f\xad\ud800-\udfff]{{1,64}}+{EMAIL})"',
    "renewal_months": rf'"{FAST["renewal_months"]}"|(?:120|1[01][0-9]|[1-9][0-9]?){_OPTIONAL}',
}
# Any other key: a string without escapes, a number of sane size, true, false or null.
_OTHER = r'"[^"\\\x00-\x1f]*+"|-?(?:0|[1-9][0-9]{0,99})(?:\.[0-9]{1,100})?(?:[eE][+-]?[0-9]{1,4})?'
_OTHER += "|true|false|null"
_SPACE = "[ \t]*"


class JsonRows(Pattern):
    """One pattern for lines with exactly `keys`, in that order, each value spelled plainly."""

    def __init__(self, keys: list[str], editions: frozenset[str]) -> None:
        values = {**_TEXT, "edition": f'"(?:{editions_pattern(editions)})"'}
        members = [
            f'"{re.escape(key)}"{_SPACE}:{_SPACE}(?:{values.get(key) or _plain(key)})'
            for key in keys
        ]
        absent = "".join(f"(?P<{CAPTURED[c]}>)" for c in CAPTURED if c not in keys)
        row = f"{_SPACE}\\{{{_SPACE}{f'{_SPACE},{_SPACE}'.join(members)}{_SPACE}\\}}{_SPACE}"
        super().__init__(row + absent)

    def fields(self, text: str) -> dict[str, str]:
        fields = row(text, 0, "")
        assert isinstance(fields, dict)  # noqa: S101 - the pattern accepted it
        return fields


def _plain(key: str) -> str:
    return f'"{FAST[key]}"{_OPTIONAL}' if key in FAST else _OTHER


def fast_rows(text: str, path: str, line: int, editions: frozenset[str]) -> JsonRows | None:
    """The fast way for a file whose first line is `text` (its values may be bad, its keys are
    what counts); None if that line cannot be the model (required keys missing, a key given
    twice, or one that needs escapes)."""
    first = row(text, line, path)
    if isinstance(first, RowError) and not first.field:
        expected = "not a mailbox snapshot: expected a JSON object per line"
        raise SnapshotError(f"{path}:{line}: {expected}")
    pairs = json.loads(text, object_pairs_hook=lambda pairs: pairs)  # an object: row() read it
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys) or not set(REQUIRED) <= set(keys):
        return None
    if any(not re.fullmatch(_SAFE + "+", key) for key in keys if key not in COLUMNS):
        return None
    return JsonRows(keys, editions)


def row(text: str, line: int, path: str) -> dict[str, str] | RowError:
    """One line read the slow way: its fields as CSV would give them, or why it is no row."""
    try:
        value = json.loads(text, parse_float=Decimal)
        problem = "" if isinstance(value, dict) else "not a JSON object"
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON: {exc.msg} at character {exc.pos + 1}"
    except (ValueError, RecursionError):
        problem = "not valid JSON: too deeply nested or malformed"
    if problem:
        return RowError(path, line, "", problem)
    fields = {str(k): _json_text(v) for k, v in value.items()}
    bad = next((k for k, v in fields.items() if v is None), "")
    if bad:
        return RowError(path, line, bad, "must be a string, number or boolean")
    return {k: v or "" for k, v in fields.items()}


def _json_text(value: Any) -> str | None:
    """The field as CSV would give it; None for arrays and objects, which no column takes."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return None
    return value if isinstance(value, str) else str(value)
