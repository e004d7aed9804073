"""Hashes with line numbers, on disk beyond a limit: what the duplicate-id and the account checks
keep of every row (a hash of the id, or of the account and of its balance and currency).

Past `LIMIT` rows the held ones are sorted and written out by range of key, so finding the keys
that repeat, or that come with more than one value, reads one range at a time: memory stays flat
whatever the number of rows. A hash can collide, so what is found here is only a suspect: the
caller reads those lines again and compares the real values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from renewd.snapshot.spill import Place, Spill

if TYPE_CHECKING:
    import numpy as np

LIMIT = 1 << 15
RANGES = 64

Stored = list[list[tuple[Spill, Place]]]  # per range of key values: where its runs are


class Claims:
    """(key, value, line) per row. `suspects()` are the lines of rows whose key repeats (with
    `by_value`: whose key comes with more than one value)."""

    def __init__(self, by_value: bool = False, spill: Spill | None = None) -> None:
        self.by_value = by_value
        self._held: list[np.ndarray] = []  # (key, line[, value]) columns, a batch each
        self._count = 0
        self._spill = spill
        self._stored: Stored = [[] for _ in range(RANGES)]

    def add(self, keys: Iterable[int], lines: Sequence[int], values: Iterable[int] = ()) -> None:
        """Rows at `lines` (a range, or a few), their keys and (with `by_value`) values."""
        import numpy as np

        count = len(lines)
        batch = np.empty((3 if self.by_value else 2, count), dtype=np.int64)
        batch[0] = np.fromiter(keys, dtype=np.int64, count=count)
        if isinstance(lines, range):
            batch[1] = np.arange(lines.start, lines.stop, dtype=np.int64)
        else:
            batch[1] = lines
        if self.by_value:
            batch[2] = np.fromiter(values, dtype=np.int64, count=count)
        self._held.append(batch)
        self._count += count
        if self._count >= LIMIT:
            self.write(self._spill or Spill())

    def write(self, spill: Spill) -> list[list[Place]]:
        """Put the held rows in `spill`, by range; returns every run's place, by range."""
        self._spill = spill
        for stored, run in zip(self._stored, self._ranges(), strict=True):
            if run.shape[1]:
                stored.append((spill, spill.put((run.shape, run.tobytes()))))
        self._held, self._count = [], 0
        return [[ref for _, ref in stored] for stored in self._stored]

    def adopt(self, places: list[list[Place]], spill: Spill) -> None:
        """Take in the runs another scan wrote to `spill` (the other half of a file read in two)."""
        for stored, refs in zip(self._stored, places, strict=True):
            stored += [(spill, ref) for ref in refs]

    def suspects(self) -> np.ndarray:
        """The lines to read again, in order, a range of key values at a time."""
        import numpy as np

        found = [np.empty(0, dtype=np.int64)]
        for stored, held in zip(self._stored, self._ranges(), strict=True):
            runs = [_run(spill.get(ref)) for spill, ref in stored]
            rows = np.concatenate([*runs, held], axis=1)
            if not rows.shape[1]:
                continue
            order = np.argsort(rows[0])
            keys = rows[0][order]
            starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
            sizes = np.diff(np.append(starts, len(keys)))  # rows of each key, in key order
            if self.by_value:
                values = rows[2][order]
                kept = np.minimum.reduceat(values, starts) != np.maximum.reduceat(values, starts)
            else:
                kept = sizes > 1
            found.append(rows[1][order][np.repeat(kept, sizes)])
        return np.sort(np.concatenate(found))

    def close(self) -> None:
        """Forget every row, and close the spills they were in."""
        for spill in {spill for stored in self._stored for spill, _ in stored}:
            spill.close()
        self._held, self._count, self._spill = [], 0, None
        self._stored = [[] for _ in range(RANGES)]

    def _ranges(self) -> list[np.ndarray]:
        """The held rows as (key, line[, value]) columns sorted by key, cut into RANGES runs by
        value of the key (hashes spread evenly over int64)."""
        import numpy as np

        width = 3 if self.by_value else 2
        rows = np.concatenate(self._held, axis=1) if self._held else np.empty((width, 0), np.int64)
        rows = rows[:, np.argsort(rows[0])]
        step = (1 << 64) // RANGES
        edges = np.array([-(1 << 63) + step * n for n in range(1, RANGES)], dtype=np.int64)
        return np.split(rows, np.searchsorted(rows[0], edges), axis=1)


def _run(stored: tuple[tuple[int, int], bytes]) -> np.ndarray:
    import numpy as np

    shape, data = stored
    return np.frombuffer(data, dtype=np.int64).reshape(shape)
