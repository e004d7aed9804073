"""`renewd runs --show N`: one run in full, with every step it held and every row it rejected.

The run's summary line (and an alert) names only the first few held mailboxes; this is where the
operator sees them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from renewd.cli.report import label, write_rows

if TYPE_CHECKING:
    from sqlalchemy import RowMapping


def write_run(run: RowMapping, held: Iterable[RowMapping], out: TextIO) -> None:
    counts = json.loads(run["counts"] or "{}")
    rejected: list[str] = json.loads(run["rejected_rows"] or "[]")
    out.write(f"run {run['id']} for {run['day'].isoformat()}: {run['status']}\n")
    fields = [
        ("started", run["started_at"]),
        ("finished", run["finished_at"] or "-"),
        ("snapshot", f"{run['snapshot_path']} (sha256 {run['snapshot_sha256'][:16]}…)"),
        ("policy", run["policy_digest"]),
        ("rows", f"{run['rows_read']:,} read, {run['rows_rejected']:,} rejected"),
        ("outcomes", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "-"),
    ]
    if run["message"]:
        fields.append(("message", run["message"]))
    for name, value in fields:
        out.write(f"  {name + ':':<10} {value}\n")
    table = [("MAILBOX", "ACCOUNT", "RULE", "CYCLE", "STEP", "ACTION", "WHY")]
    for row in held:
        step = label(row["anchor"], row["step"])
        cycle = row["cycle"].isoformat()
        table.append(
            (
                row["mailbox_id"],
                row["account_id"],
                row["rule"],
                cycle,
                step,
                row["kind"],
                row["error"],
            )
        )
    out.write(f"\nheld steps ({len(table) - 1:,}):\n")
    if len(table) > 1:
        write_rows(table, out)
    elif run["status"] == "held":
        out.write("  none left: a later run decided them again (renewd runs)\n")
    else:
        out.write("  none\n")
    shown = f" (the first {len(rejected):,})" if len(rejected) < run["rows_rejected"] else ""
    out.write(f"\nrejected rows{shown}:\n")
    for line in rejected or ["none"]:
        out.write(f"  {line}\n")
