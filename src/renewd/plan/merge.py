"""Sorted runs waiting on disk, put in order with memory bounded however many there are.

A big day's decisions (a dry-run's, or a simulated day's) come from every group of accounts,
each group's already in order: a run. Loading every run of a big day at once holds the whole
day, or a piece of every run (memory grows with the snapshot either way), so runs are merged at
most `FAN_IN` at a time, in pieces of `BLOCK` items: more runs than that are first merged in
batches into longer runs on disk, in blocks, until few are left. Each merge step takes what
every run holds in memory up to the smallest of their last keys and sorts only that (the sort
is C's, and runs already in order cost it little).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Any, TypeVar

from renewd.snapshot.spill import Place, Spill

E = TypeVar("E")
# What a run holds: the key (the mailbox's expiry that day, a date or its ordinal, and the
# mailbox), then the value. Equal keys come from one mailbox, so from one run, in its order.
Ordered = tuple[Any, str, E]
Run = list[tuple[Spill, Place]]  # a sorted run: its blocks, in order

FAN_IN = 32
BLOCK = 512
_key = itemgetter(0, 1)
_expiry, _mailbox = itemgetter(0), itemgetter(1)


def put_in_order(items: list[Ordered[Any]]) -> None:
    """Sorts by key, keeping the order of equal keys: two stable sorts on one field each,
    three times faster than one sort of tuples that mostly tie on the expiry."""
    items.sort(key=_mailbox)
    items.sort(key=_expiry)


def merged(runs: list[Run]) -> Iterator[list[Ordered[Any]]]:
    """Every item of `runs`, in order, in batches; at most `FAN_IN` x `BLOCK` items (or as
    many as the runs' single blocks hold) are in memory at once."""
    if len(runs) <= FAN_IN:
        yield from _batches(runs)
        return
    scratch = Spill()  # the longer runs of this merge, gone with it
    try:
        while len(runs) > FAN_IN:
            runs = [
                _written(_batches(runs[at : at + FAN_IN]), scratch)
                for at in range(0, len(runs), FAN_IN)
            ]
        yield from _batches(runs)
    finally:
        scratch.close()


def values(batches: Iterable[list[Ordered[E]]]) -> Iterator[E]:
    for batch in batches:
        for item in batch:
            yield item[2]


def _batches(runs: list[Run]) -> Iterator[list[Ordered[Any]]]:
    """The runs merged: each batch is every item held up to the least of the runs' last keys
    (all that can come before anything not yet read), then that run reads its next block."""
    pending = [_Held(_blocks(run)) for run in runs]
    pending = [run for run in pending if run.items]
    while pending:
        cut = min(_key(run.items[-1]) for run in pending)
        batch: list[Ordered[Any]] = []
        for run in pending:
            batch += run.take(cut)
        put_in_order(batch)
        yield batch
        pending = [run for run in pending if run.items]


class _Held:
    """A run in a merge: the block it holds, from `start` on, then the blocks still on disk."""

    __slots__ = ("blocks", "items", "start")

    def __init__(self, blocks: Iterator[list[Ordered[Any]]]) -> None:
        self.blocks = blocks
        self.items: list[Ordered[Any]] = next(blocks, [])
        self.start = 0

    def take(self, cut: tuple[Any, str]) -> list[Ordered[Any]]:
        """Its items up to `cut`; once the block is used up, the next one is read."""
        end = bisect_right(self.items, cut, lo=self.start, key=_key)
        taken = self.items[self.start : end]
        self.start = end
        if end == len(self.items):
            self.items, self.start = next(self.blocks, []), 0
        return taken


def _blocks(run: Run) -> Iterator[list[Ordered[Any]]]:
    for spill, place in run:
        yield spill.get(place)


def _written(batches: Iterable[list[Ordered[E]]], spill: Spill) -> Run:
    """The batches as one run on disk, in blocks of `BLOCK` items."""
    run: Run = []
    block: list[Ordered[E]] = []
    for batch in batches:
        block += batch
        while len(block) >= BLOCK:
            run.append((spill, spill.put(block[:BLOCK])))
            del block[:BLOCK]
    if block:
        run.append((spill, spill.put(block)))
    return run
