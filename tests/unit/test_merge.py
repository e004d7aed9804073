"""A simulated day's runs merged with bounded memory give exactly the order one sort of everything
gives: by expiry, then mailbox, a mailbox's own decisions in the order they were decided."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renewd.plan import merge
from renewd.plan.merge import Run, merged, put_in_order
from renewd.snapshot.spill import Place, Spill


class Counted(Spill):
    """A spill that counts the items read from it and not yet written back: what is in memory."""

    held = 0

    def put(self, value: Any) -> Place:
        Counted.held -= len(value)
        return super().put(value)

    def get(self, place: Place) -> Any:
        value = super().get(place)
        Counted.held += len(value)
        return value


# A mailbox's decisions on one day: its expiry (an ordinal) and how many; ids with non-ASCII
# characters order as Python orders text.
MAILBOX = st.tuples(st.integers(738000, 738006), st.integers(1, 4))
IDS = st.text(st.sampled_from("ab9é名"), min_size=1, max_size=4)


@st.composite
def day(draw: st.DrawFn) -> tuple[list[list[merge.Ordered[Any]]], list[int]]:
    """Runs of whole mailboxes, each in order, and how each run is cut into blocks."""
    mailboxes = draw(st.dictionaries(IDS, MAILBOX, max_size=40))
    count = draw(st.integers(1, 12))
    runs: list[list[merge.Ordered[Any]]] = [[] for _ in range(count)]
    for mailbox, (expiry, decided) in mailboxes.items():
        runs[draw(st.integers(0, count - 1))] += [
            (expiry, mailbox, (mailbox, n)) for n in range(decided)
        ]
    for run in runs:
        put_in_order(run)
    return runs, [draw(st.integers(1, 5)) for _ in runs]


@settings(max_examples=300, deadline=None)
@given(day(), st.integers(2, 4), st.integers(1, 4))
def test_merged_runs_come_out_as_one_stable_sort_with_bounded_batches(
    drawn: tuple[list[list[merge.Ordered[Any]]], list[int]], fan_in: int, block: int
) -> None:
    runs, cuts = drawn
    expected = [item for run in runs for item in run]
    put_in_order(expected)
    spill = Counted()
    batches: list[list[merge.Ordered[Any]]] = []
    most = 0
    try:
        stored: list[Run] = [
            [(spill, spill.put(run[at : at + cut])) for at in range(0, len(run), cut)]
            for run, cut in zip(runs, cuts, strict=True)
        ]
        Counted.held = 0
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(merge, "FAN_IN", fan_in)
            patch.setattr(merge, "BLOCK", block)
            patch.setattr(merge, "Spill", Counted)
            for batch in merged(stored):
                most = max(most, Counted.held)
                Counted.held -= len(batch)
                batches.append(batch)
    finally:
        spill.close()
    assert [item for batch in batches for item in batch] == expected
    # what the runs hold at once, however many there are: a block each, a block being written
    assert most <= (fan_in + 1) * max([block, *cuts])
