"""One day's plan for a snapshot: what dry-run prints and what run then acts on.

Both go through `plan_day`; the only difference is what happens to the plan afterwards. With a
ledger, the plan takes account of what earlier runs did (steps done, renewals paid, the days
since the last complete run); without one, every step is new. Nothing here writes anything
but, on a big day, its own temporary file.
"""

from __future__ import annotations

import functools
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from renewd.config.model import Config
from renewd.core.history import History, MemoryHistory, Past
from renewd.core.meter import Meter
from renewd.core.model import Anchor, Decision, Kind, Mailbox
from renewd.plan.evaluate import DayPlan, Evaluator, Window
from renewd.plan.fork import alternate
from renewd.plan.merge import Ordered, merged, put_in_order, values
from renewd.plan.packed import pack, unpack
from renewd.policy.model import Policy
from renewd.snapshot.reader import Snapshot, Wanted, taken_at
from renewd.snapshot.spill import Place, Spill

# Mailboxes near a step held in memory at once; a bigger day is planned in parts of whole
# accounts of about this size, kept on disk. The buckets group accounts for those parts.
PART_SIZE = 1024
BUCKETS = 256
CHUNK = 32  # decisions read back at a time, per part, to print the plan in order

# What a printed plan makes of a decision (a jsonl line; None: left out), made by the processes
# that plan a big day, each for its own groups, so that only the merge is left to this one.
Encode = Callable[[Decision], str | None]


@dataclass
class Part:
    """Whole accounts planned together: their mailboxes, what the ledger knows, the decisions."""

    mailboxes: dict[str, Mailbox]
    history: History
    decisions: list[Decision]


@dataclass
class DayResult:
    """The day's plan, in parts. A small day is one part in memory; a big one is read back from
    disk part by part (`parts`), and its decisions in order (`plan`), a few at a time."""

    day: date
    evaluator: Evaluator
    snapshot: Snapshot
    window: Window
    taken_at: datetime
    watched: dict[str, Mailbox] = field(default_factory=dict)
    actions: Counter[tuple[str, Kind]] = field(default_factory=Counter)  # by rule and kind
    keep_parts: bool = True  # False: on disk, only the decisions are kept, not `parts()`
    encode: Encode | None = None  # on disk, what it made of the decisions is kept instead
    _kept: list[Part] = field(default_factory=list)  # a small day's parts
    _stored: list[tuple[Spill, Stored]] = field(default_factory=list)  # a big day's

    @property
    def deletions(self) -> int:
        """Deletions the plan would take, for the mass-deletion guard."""
        return sum(count for (_, kind), count in self.actions.items() if kind is Kind.DELETE)

    def add(self, part: Part) -> None:
        self.actions.update(_actions(part))
        self._kept.append(part)

    def adopt(self, spill: Spill, stored: Stored) -> None:
        """A part that `_store` wrote to `spill`."""
        self.actions.update(stored.actions)
        self._stored.append((spill, stored))

    def parts(self) -> Iterator[Part]:
        assert self.encode is None  # noqa: S101 - parts keep decisions, not what encode made
        yield from self._kept
        for spill, stored in self._stored:
            assert stored.head is not None  # noqa: S101 - see keep_parts
            mailboxes, history = spill.get(stored.head)
            decisions = [ordered[2] for ordered in _read(spill, stored.chunks)]
            yield Part(mailboxes, history, decisions)

    def close(self) -> None:
        """Let go of the parts on disk; `plan` and `parts` are empty afterwards."""
        for spill in {id(spill): spill for spill, _ in self._stored}.values():
            spill.close()
        self._kept, self._stored = [], []

    @property
    def plan(self) -> DayPlan:
        assert self.encode is None  # noqa: S101 - see `encoded`
        return DayPlan(self.day, _Merged(self))

    def encoded(self) -> Iterator[str]:
        """The plan as `encode` writes it, in order: a big day's was written by the processes
        that planned it, a small day's is written now."""
        assert self.encode is not None  # noqa: S101 - only a plan made with `encode`
        return values(self._in_order(self.encode))

    def _in_order(self, encode: Encode | None = None) -> Iterator[list[Ordered[Any]]]:
        """The decisions (or what `encode` made of them) in the plan's order, a batch at a
        time: a small day's sorted in memory, a big day's parts merged a few at a time."""
        assert not (self._kept and self._stored)  # noqa: S101 - one or the other, see `_plan`
        if self._stored:
            return merged([[(spill, c) for c in stored.chunks] for spill, stored in self._stored])
        kept = [ordered for part in self._kept for ordered in _ordered(part, encode)]
        put_in_order(kept)
        return iter([kept])


@dataclass(frozen=True)
class Stored:
    """A part written to a spill: what it does, its mailboxes and history (if kept), and its
    decisions (or what `Encode` made of them) in the plan's order, CHUNK at a time."""

    actions: Counter[tuple[str, Kind]]
    head: Place | None
    chunks: list[Place]


def _store(part: Part, spill: Spill, keep_parts: bool, encode: Encode | None = None) -> Stored:
    ordered = _ordered(part, encode)
    chunks = [spill.put(ordered[start : start + CHUNK]) for start in range(0, len(ordered), CHUNK)]
    head = spill.put((part.mailboxes, part.history)) if keep_parts else None
    return Stored(_actions(part), head, chunks)


def _actions(part: Part) -> Counter[tuple[str, Kind]]:
    return Counter((d.rule, d.kind) for d in part.decisions if not d.superseded_by)


class _Merged:
    """The decisions of every part in the plan's order (expiry, then mailbox), each time it is
    iterated: each part is in that order already, so they are merged, not sorted."""

    def __init__(self, result: DayResult) -> None:
        self._result = result

    def __iter__(self) -> Iterator[Decision]:
        return values(self._result._in_order())


class Candidates:
    """The mailboxes some rule can reach, by account; beyond `limit` they wait on disk."""

    def __init__(self) -> None:
        self.limit = PART_SIZE
        self._held: list[list[Mailbox]] = [[] for _ in range(BUCKETS)]
        self._count = 0
        self.spill: Spill | None = None
        # Where each bucket's batches went, as offset, size pairs: a tuple each would cost more
        # than the mailboxes' share of memory on a snapshot of millions.
        self._spilled = [array("q") for _ in range(BUCKETS)]
        self._sizes = [0] * BUCKETS  # mailboxes on disk, by bucket

    def add(self, mailbox: Mailbox) -> None:
        self._held[zlib.crc32(mailbox.account_id.encode()) % BUCKETS].append(mailbox)
        self._count += 1
        if self._count >= self.limit:
            self._write()

    def groups(self, excluded: set[str]) -> Iterator[list[Mailbox]]:
        """Whole accounts, about `limit` mailboxes at a time (all at once if none went to disk)."""
        for _, load in self.parts(excluded):
            yield load()

    def parts(self, excluded: set[str]) -> Iterator[tuple[int, Callable[[], list[Mailbox]]]]:
        """The groups as `groups` makes them, each as its size and a function that reads it:
        two processes that share the groups each read only their own."""
        pieces: list[Place | list[Mailbox]] = []
        size = 0
        for bucket, held in enumerate(self._held):
            places = self._spilled[bucket]
            pieces += [(places[n], places[n + 1]) for n in range(0, len(places), 2)]
            pieces.append(held)
            size += self._sizes[bucket] + len(held)
            if self.spill is not None and size >= self.limit:
                yield size, functools.partial(self._load, pieces, excluded)
                pieces, size = [], 0
        if size or self.spill is None:
            yield size, functools.partial(self._load, pieces, excluded)

    def _load(self, pieces: list[Place | list[Mailbox]], excluded: set[str]) -> list[Mailbox]:
        group: list[Mailbox] = []
        for piece in pieces:
            if isinstance(piece, list):
                group += piece
            else:
                assert self.spill is not None  # noqa: S101 - places exist only once spilled
                group += map(unpack, self.spill.get(piece))
        return [m for m in group if m.mailbox_id not in excluded]

    def _write(self) -> None:
        self.spill = self.spill or Spill()
        for bucket, held in enumerate(self._held):
            if held:
                self._spilled[bucket].extend(self.spill.put(list(map(pack, held))))
                self._sizes[bucket] += len(held)
                self._held[bucket] = []
        self._count = 0


def wanted(window: Window, ids: Iterable[str] = ()) -> Wanted:
    """The snapshot rows to build mailboxes for: those whose dates the window can reach, and
    `ids`; the rows expired by the window's last day are counted (for the guards)."""
    due = {
        anchor: frozenset(day.isoformat() for day in days) for anchor, days in window.due.items()
    }
    return Wanted(due[Anchor.EXPIRY], due[Anchor.DOMAIN], frozenset(ids), window.today.isoformat())


def day_window(config: Config, evaluator: Evaluator, day: date, ledger: Past | None) -> Window:
    """The days a run on `day` evaluates: `day` and, after missed days, those since the last
    complete run (at most `catch_up_days` back)."""
    since = ledger.catch_up_since() if ledger else None
    if since is not None:
        since = max(since, day - timedelta(days=config.catch_up_days + 1))
    return evaluator.window(day, since)


def plan_day(
    config: Config,
    policy: Policy,
    snapshot_path: Path,
    day: date,
    ledger: Past | None = None,
    keep_parts: bool = False,
    meter: Meter | None = None,
    encode: Encode | None = None,
) -> DayResult:
    """Stream the snapshot, keep only the mailboxes some rule can reach, and plan the day.

    Only those candidates are kept, and beyond `PART_SIZE` they are kept on disk and planned in
    parts of whole accounts, so memory stays flat whatever the snapshot's size. A mailbox whose
    id appears twice gets no action. `keep_parts`: keep each part's mailboxes and history for
    `parts()`, as `run` needs; printing the plan does not. `meter` shows how far it got.
    `encode`: the plan is printed as `encode` writes each decision (`encoded()`), not kept.
    """
    meter = meter or Meter()
    evaluator = Evaluator(policy)
    window = day_window(config, evaluator, day, ledger)
    moment = taken_at(snapshot_path)
    watched = ledger.watched(moment) if ledger else set()
    snapshot = Snapshot(snapshot_path, policy.editions, config.default_locale)
    candidates = Candidates()
    current: dict[str, Mailbox] = {}
    meter.begin("reading the snapshot", "rows", done=lambda: snapshot.rows_read)
    near = 0
    for mailbox in snapshot.scan(wanted(window, watched)):
        if mailbox.mailbox_id in watched:
            current[mailbox.mailbox_id] = mailbox
        if window.may_match(mailbox):
            candidates.add(mailbox)
            near += 1
    meter.begin("planning", "mailboxes", near)
    result = DayResult(
        day, evaluator, snapshot, window, moment, current, keep_parts=keep_parts, encode=encode
    )
    try:
        _plan(result, candidates, ledger, meter)
    finally:
        if candidates.spill is not None:
            candidates.spill.close()
    return result


def _plan(result: DayResult, candidates: Candidates, ledger: Past | None, meter: Meter) -> None:
    """Plan the candidates a group of whole accounts at a time. A big day's groups go to disk,
    shared with a forked process when no group reads the ledger (its connection must not be
    used from two processes): a dry-run before the first run."""
    snapshot = result.snapshot
    visible = {m.mailbox_id: m.expires_on for m in result.watched.values()}

    def groups() -> Iterator[Callable[[], list[Mailbox]]]:
        """Each group as a function that reads it: each process reads only its own."""
        for size, load in candidates.parts(snapshot.duplicates):
            yield load
            meter.advance(size)

    def planned(group: list[Mailbox]) -> Part:
        mailboxes = {m.mailbox_id: m for m in group}
        history: History = MemoryHistory()
        if ledger is not None:
            accounts = {m.account_id for m in group}
            history = ledger.history(
                mailboxes.keys(), accounts, result.taken_at, visible, result.day
            )
        plan = result.evaluator.plan(group, result.window, history, snapshot.conflicting_accounts)
        return Part(mailboxes, history, list(plan.decisions))

    def work(load: Callable[[], list[Mailbox]], spill: Spill) -> Stored:
        return _store(planned(load()), spill, result.keep_parts, result.encode)

    if candidates.spill is None:
        for load in groups():
            result.add(planned(load()))
        return
    for spill, stored in alternate(groups, work, worth_it=ledger is None):
        result.adopt(spill, stored)


def _ordered(part: Part, encode: Encode | None = None) -> list[Ordered[Any]]:
    """The part's decisions (with `encode`: what it makes of them) with where they go, in the
    plan's order (the evaluator's already; sorted again, which costs little on a sorted list,
    because the merge relies on it)."""
    mailboxes = part.mailboxes
    ordered: list[Ordered[Any]]
    if encode is None:
        ordered = [(mailboxes[d.mailbox_id].expires_on, d.mailbox_id, d) for d in part.decisions]
    else:
        ordered = [
            (mailboxes[d.mailbox_id].expires_on, d.mailbox_id, line)
            for d in part.decisions
            if (line := encode(d)) is not None
        ]
    put_in_order(ordered)
    return ordered


def _read(spill: Spill, chunks: Iterable[Place]) -> Iterator[Ordered[Any]]:
    for chunk in chunks:
        yield from spill.get(chunk)
