"""A run's stages on its meter: writing the plan, then the executor's effects against the outbox."""

from __future__ import annotations

from collections.abc import Iterator

from renewd.act.executor import Executor
from renewd.core.meter import Meter, tally
from renewd.state.ledger import Ledger
from renewd.state.plans import PlannedStep


def metered(steps: Iterator[PlannedStep], meter: Meter) -> Iterator[PlannedStep]:
    for step in steps:
        meter.advance()
        yield step


def meter_effects(meter: Meter, ledger: Ledger, executor: Executor) -> None:
    """The executor's own tallies, against what the outbox holds for it, as the run's last stage."""
    totals = ledger.open_counts()
    outcomes = executor.counts
    meter.outcomes = outcomes
    meter.begin_many(
        "acting",
        [
            ("charging", tally(outcomes, "deduct:"), totals["deduct"], "charges"),
            ("deleting", tally(outcomes, "delete:"), totals["delete"], "deletions"),
            ("sending", tally(outcomes, "notify:"), totals["notify"], "messages"),
        ],
    )
