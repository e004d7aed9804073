"""The ledger: runs, every decided step and its outbox state, consumption orders, deletions.

One class over one database, assembled from parts by what they record: `db` (connection and
schema), `runs`, `history` (what the core asks), `plans` (writing a day's plan), `outbox` (the
executor's side), `receipts` (what became of messages that left) and `reports` (reading it back
for people).
"""

from __future__ import annotations

from renewd.state.history import Histories
from renewd.state.outbox import Outbox
from renewd.state.plans import Plans
from renewd.state.receipts import Receipts
from renewd.state.reports import Reports
from renewd.state.runs import Runs


class Ledger(Runs, Histories, Plans, Outbox, Receipts, Reports):
    """The state store. `readonly` opens an existing ledger without writing anything to it."""
