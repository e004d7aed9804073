"""JSON Lines snapshots: one object per line, its values turned into the text CSV would hold."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

from renewd.core.errors import SnapshotError
from renewd.core.model import RowError


def jsonl_rows(handle: IO[str], path: str) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    first = True
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text, parse_float=Decimal)
            problem = "" if isinstance(value, dict) else "not a JSON object"
        except json.JSONDecodeError as exc:
            problem = f"not valid JSON: {exc.msg} at character {exc.pos + 1}"
        except (ValueError, RecursionError):
            problem = "not valid JSON: too deeply nested or malformed"
        if first and problem:
            raise SnapshotError(
                f"{path}:{line}: not a mailbox snapshot: expected a JSON object per line"
            )
        first = False
        if problem:
            yield line, RowError(path, line, "", problem)
            continue
        fields = {str(k): _json_text(v) for k, v in value.items()}
        bad = next((k for k, v in fields.items() if v is None), "")
        if bad:
            yield line, RowError(path, line, bad, "must be a string, number or boolean")
        else:
            yield line, {k: v or "" for k, v in fields.items()}


def _json_text(value: Any) -> str | None:
    """The field as CSV would give it; None for arrays and objects, which no column takes."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return None
    return value if isinstance(value, str) else str(value)
