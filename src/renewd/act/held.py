"""What a run held back, kept by reason, and said in one line of bounded length."""

from __future__ import annotations

from typing import TYPE_CHECKING

from renewd.core.model import Kind, StepKey

if TYPE_CHECKING:
    from renewd.act.run import RunReport

HELD_SHOWN = 5  # mailboxes named per reason in the one line that says what a run held


def note_held(report: RunReport, mass: str, holds: dict[StepKey, str]) -> None:
    """Held steps by reason, in the plan's order; a mass hold holds all of them for one reason."""
    if mass:
        report.held = {mass: []}
        report.held_steps = sum(
            count
            for (_, kind), count in report.result.actions.items()
            if kind in (Kind.DEDUCT, Kind.DELETE)
        )
        return
    for key, why in holds.items():
        report.held.setdefault(why, []).append(key.mailbox_id)
    report.held_steps = len(holds)


def held_summary(report: RunReport) -> str:
    """What was held, in one line of bounded length for the run record, an alert, a log line
    and `run`'s output: a count per reason and the first few mailboxes. Thousands of mailboxes
    seen for the first time would otherwise make a line of megabytes; the ledger has them all,
    and `renewd runs --show N` lists them."""
    parts = []
    for reason, ids in report.held.items():
        if not ids:
            parts.append(f"all {report.held_steps:,} deletions and deductions: {reason}")
            continue
        named = ", ".join(ids[:HELD_SHOWN])
        if len(ids) > HELD_SHOWN:
            named += f" and {len(ids) - HELD_SHOWN:,} more"
        parts.append(f"{len(ids):,} deletion{'s' if len(ids) > 1 else ''}: {reason} ({named})")
    return "; ".join(parts) + f"; the full list: renewd runs --show {report.run_id}"
