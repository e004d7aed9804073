"""The second pass's verdicts, from the rows it looked at again: which mailbox ids repeat (every
row after the first is rejected) and which accounts' rows disagree on balance or currency.
"""

from __future__ import annotations

from decimal import Decimal

from renewd.core.model import RowError
from renewd.snapshot.rows import show
from renewd.snapshot.tally import KEPT_ERRORS, Found, Tally


def settle(tally: Tally, found: list[Found]) -> None:
    repeats = _repeats(tally, found)
    _conflicts(tally, [row for row in found if row.valid and row.line not in repeats])


def _repeats(tally: Tally, found: list[Found]) -> set[int]:
    """Report every row that repeats an earlier row's id; returns their lines."""
    first: set[str] = set()
    lines: set[int] = set()
    path = str(tally.path)
    for row in found:
        if row.mailbox_id not in first:
            first.add(row.mailbox_id)
            continue
        lines.add(row.line)
        tally.duplicates.add(row.mailbox_id)
        reason = f"duplicate mailbox_id {show(row.mailbox_id)}: no action is taken for this mailbox"
        error = RowError(path, row.line, "mailbox_id", reason, row.mailbox_id)
        if row.valid:
            tally.rejected += 1
            tally.rejected_ids.add(row.mailbox_id)
            tally.errors.append(error)  # kept or not below, by its line like the others
            continue
        # the row's own defect was reported; that it repeats an id says more
        tally.errors = [error if e.line == row.line else e for e in tally.errors]
    # The first KEPT_ERRORS by line: every error left out earlier is below all of these.
    tally.errors = sorted(tally.errors, key=lambda error: error.line)[:KEPT_ERRORS]
    return lines


def _conflicts(tally: Tally, valid: list[Found]) -> None:
    """Each valid row whose balance (as an amount) or currency differs from its account's first."""
    first: dict[str, Found] = {}
    path = str(tally.path)
    for row in valid:
        model = first.setdefault(row.account_id, row)
        if row.currency != model.currency:
            field, here, there = "currency", row.currency, model.currency
        elif Decimal(row.balance) != Decimal(model.balance):
            field, here, there = "balance", row.balance, model.balance
        else:
            continue
        tally.conflicting_accounts.add(row.account_id)
        if len(tally.conflicts) < KEPT_ERRORS:
            reason = (
                f"account {show(row.account_id)} has {field} {here} here but {there} on line "
                f"{model.line}: no deduction or balance message for this account today"
            )
            tally.conflicts.append(RowError(path, row.line, field, reason, row.mailbox_id))
