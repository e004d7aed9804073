"""The columnar alternative, measured beside renewd's reader: CPU seconds for one snapshot.

`python bench/columnar.py SNAPSHOT.csv` (pyarrow must be installed: it is not a dependency).
Three readers of the same file, each in one process and one thread (renewd reads a big file in
two processes, and pyarrow could use two threads: both halve alike):

- the floor: `csv.reader` over the file, nothing else;
- renewd's scan: every row validated, counted, claimed for the duplicate and account checks, the
  rows near a step (the shipped policy, 2026-12-01) made Mailboxes;
- pyarrow's streaming CSV reader, every column checked by RE2 on whole columns with the same
  patterns, the expired count, the candidate filter, the ids hashed for the duplicate check. It
  has no line numbers, no per-row errors and no account check: what it would cost at least.
"""

from __future__ import annotations

import csv
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 12, 1)


def floor(path: Path) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        for _ in csv.reader(handle):
            pass


def renewd(path: Path) -> None:
    from renewd.core.model import Anchor
    from renewd.plan.evaluate import Evaluator
    from renewd.policy.loader import load_policy
    from renewd.snapshot import split
    from renewd.snapshot.reader import Snapshot, Wanted

    split.PARALLEL_FROM = 1 << 62  # one process, as the others
    policy = load_policy(sorted((ROOT / "rules").glob("*.yaml")))
    window = Evaluator(policy).window(DAY)
    due = {a: frozenset(d.isoformat() for d in days) for a, days in window.due.items()}
    wanted = Wanted(due[Anchor.EXPIRY], due[Anchor.DOMAIN], frozenset(), DAY.isoformat())
    for _ in Snapshot(path, policy.editions, "en").scan(wanted):
        pass


def columnar(path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    date_ = r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    amount = r"[0-9]{1,15}(?:\.[0-9]{1,6})?"
    flag = r"true|false|TRUE|FALSE|True|False|1|0|yes|no"
    patterns = {
        "mailbox_id": r"[^\x00-\x1f\x7f]{1,128}",
        "account_id": r"[^\x00-\x1f\x7f]{1,128}",
        "edition": "basic|enterprise|free|standard",
        "expires_on": date_,
        "auto_renew": flag,
        "balance": amount,
        "renewal_fee": amount,
        "currency": "[A-Z]{3}",
        "email": r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,120}[A-Za-z0-9])?\.[A-Za-z]{2,63}",
        "renewal_months": "(?:120|1[01][0-9]|[1-9][0-9]?)?",
        "phone": r"(?:\+[1-9][0-9]{6,14})?",
        "locale": "(?:[a-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,8})?",
        "domain": r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,59}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,63})?",
        "domain_via_provider": f"(?:{flag})?",
        "domain_expires_on": f"(?:{date_})?",
    }
    columns = {name: pa.string() for name in patterns}
    wanted = pa.array(sorted({f"2026-{m:02d}-{d:02d}" for m in (11, 12) for d in range(1, 31)}))
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=1 << 20, use_threads=False),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(column_types=columns, strings_can_be_null=False),
    )
    hashes: list[Any] = []
    for batch in reader:
        valid = None
        for name, pattern in patterns.items():
            ok = pc.match_substring_regex(batch.column(name), f"^(?:{pattern})$")
            valid = ok if valid is None else pc.and_(valid, ok)
        expiry = batch.column("expires_on")
        pc.sum(pc.less_equal(expiry, DAY.isoformat()))
        near = pc.or_(pc.is_in(expiry, wanted), pc.is_in(batch.column("domain_expires_on"), wanted))
        batch.filter(pc.and_(valid, near)).to_pylist()
        ids = batch.column("mailbox_id").to_pylist()
        hashes.append(np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids)))


def main() -> None:
    path = Path(sys.argv[1])
    for name, read in (("csv floor", floor), ("renewd scan", renewd), ("pyarrow", columnar)):
        started = time.process_time()
        read(path)
        print(f"{name:<12} {time.process_time() - started:6.2f} s CPU", flush=True)


if __name__ == "__main__":
    main()
