"""One day's plan for a snapshot: what dry-run prints and what run then acts on.

Both go through `plan_day`; the only difference is what happens to the plan afterwards. With a
ledger, the plan takes account of what earlier runs did (steps done, renewals paid, the days
since the last complete run); without one, every step is new. Nothing here writes anything
but, on a big day, its own temporary file.
"""

from __future__ import annotations

import functools
import heapq
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from renewd.config.model import Config
from renewd.core.history import History, MemoryHistory, Past
from renewd.core.meter import Meter
from renewd.core.model import Anchor, Decision, Kind, Mailbox
from renewd.plan.evaluate import DayPlan, Evaluator, Window
from renewd.plan.packed import pack, unpack
from renewd.policy.model import Policy
from renewd.snapshot.reader import Snapshot, Wanted, taken_at
from renewd.snapshot.spill import Place, Spill

# Mailboxes near a step held in memory at once; a bigger day is planned in parts of whole
# accounts of about this size, kept on disk. The buckets group accounts for those parts.
PART_SIZE = 1024
BUCKETS = 256
CHUNK = 32  # decisions read back at a time, per part, to print the plan in order

# A decision with where it goes in the plan: expiry, mailbox, its place in the mailbox's part
# (unique, so tuples compare without ever reaching the Decision).
Ordered = tuple[date, str, int, Decision]


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
    spill: Spill | None = None  # where the parts go on a day too big to hold (else: memory)
    keep_parts: bool = True  # False: on disk, only the decisions are kept, not `parts()`
    _kept: list[Part] = field(default_factory=list)
    _stored: list[tuple[Place | None, list[Place]]] = field(default_factory=list)

    @property
    def deletions(self) -> int:
        """Deletions the plan would take, for the mass-deletion guard."""
        return sum(count for (_, kind), count in self.actions.items() if kind is Kind.DELETE)

    def add(self, part: Part) -> None:
        self.actions.update((d.rule, d.kind) for d in part.decisions if not d.superseded_by)
        if self.spill is None:
            self._kept.append(part)
            return
        ordered = _ordered(part)
        chunks = [
            self.spill.put(ordered[start : start + CHUNK])
            for start in range(0, len(ordered), CHUNK)
        ]
        head = self.spill.put((part.mailboxes, part.history)) if self.keep_parts else None
        self._stored.append((head, chunks))

    def parts(self) -> Iterator[Part]:
        yield from self._kept
        spill = self.spill
        for head, chunks in self._stored:
            assert spill is not None and head is not None  # noqa: S101 - see keep_parts
            mailboxes, history = spill.get(head)
            decisions = [ordered[3] for chunk in chunks for ordered in spill.get(chunk)]
            yield Part(mailboxes, history, decisions)

    def close(self) -> None:
        """Let go of the parts on disk; `plan` and `parts` are empty afterwards."""
        if self.spill is not None:
            self.spill.close()
        self._kept, self._stored, self.spill = [], [], None

    @property
    def plan(self) -> DayPlan:
        return DayPlan(self.day, _Merged(self))

    def _streams(self) -> list[Iterator[Ordered]]:
        streams = [iter(_ordered(part)) for part in self._kept]
        spill = self.spill
        if spill is not None:
            streams += [_read(spill, chunks) for _, chunks in self._stored]
        return streams


class _Merged:
    """The decisions of every part in the plan's order (expiry, then mailbox): each part is in
    that order already, so they are merged, not sorted."""

    def __init__(self, result: DayResult) -> None:
        self._result = result

    def __iter__(self) -> Iterator[Decision]:
        streams = self._result._streams()
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
        return (ordered[3] for ordered in merged)


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
) -> DayResult:
    """Stream the snapshot, keep only the mailboxes some rule can reach, and plan the day.

    Only those candidates are kept, and beyond `PART_SIZE` they are kept on disk and planned in
    parts of whole accounts, so memory stays flat whatever the snapshot's size. A mailbox whose
    id appears twice gets no action. `keep_parts`: keep each part's mailboxes and history for
    `parts()`, as `run` needs; printing the plan does not. `meter` shows how far it got.
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
    spill = Spill() if candidates.spill else None
    result = DayResult(
        day, evaluator, snapshot, window, moment, current, spill=spill, keep_parts=keep_parts
    )
    visible = {m.mailbox_id: m.expires_on for m in current.values()}
    for group in candidates.groups(snapshot.duplicates):
        mailboxes = {m.mailbox_id: m for m in group}
        history: History = MemoryHistory()
        if ledger is not None:
            accounts = {m.account_id for m in group}
            history = ledger.history(mailboxes.keys(), accounts, moment, visible, day)
        plan = evaluator.plan(group, window, history, snapshot.conflicting_accounts)
        result.add(Part(mailboxes, history, list(plan.decisions)))
        meter.advance(len(group))
    if candidates.spill is not None:
        candidates.spill.close()
    return result


def _ordered(part: Part) -> list[Ordered]:
    mailboxes = part.mailboxes
    return [
        (mailboxes[d.mailbox_id].expires_on, d.mailbox_id, n, d)
        for n, d in enumerate(part.decisions)
    ]


def _read(spill: Spill, chunks: Iterable[Place]) -> Iterator[Ordered]:
    for chunk in chunks:
        yield from spill.get(chunk)
