"""The duplicate-id check's memory: 8 bytes per row (the id's hash), on disk beyond a limit.

Past `LIMIT` hashes, the held ones are sorted and written out by range of value, so finding the
hashes that repeat reads one range at a time: memory stays flat whatever the number of rows.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING

from renewd.snapshot.spill import Place, Spill

if TYPE_CHECKING:
    import numpy as np

LIMIT = 1 << 17
RANGES = 64

Stored = list[list[tuple[Spill, Place]]]  # per range of hash values: where its runs are


class Claims:
    def __init__(self, spill: Spill | None = None) -> None:
        self.held = array("q")
        self._spill = spill
        self._stored: Stored = [[] for _ in range(RANGES)]

    def extend(self, hashes: Iterable[int]) -> None:
        self.held.extend(hashes)
        if len(self.held) >= LIMIT:
            self.write(self._spill or Spill())

    def write(self, spill: Spill) -> list[list[Place]]:
        """Put the held hashes in `spill`, by range; returns every run's place, by range."""
        self._spill = spill
        for stored, run in zip(self._stored, _ranges(self.held), strict=True):
            if len(run):
                stored.append((spill, spill.put(run.tobytes())))
        self.held = array("q")
        return [[ref for _, ref in stored] for stored in self._stored]

    def adopt(self, places: list[list[Place]], spill: Spill) -> None:
        """Take in the runs another scan wrote to `spill` (the other half of a file read in two)."""
        for stored, refs in zip(self._stored, places, strict=True):
            stored += [(spill, ref) for ref in refs]

    def repeats(self) -> frozenset[int]:
        """The hashes that occur more than once, a range of values at a time."""
        import numpy as np

        found: set[int] = set()
        for stored, run in zip(self._stored, _ranges(self.held), strict=True):
            runs = [np.frombuffer(spill.get(ref), dtype=np.int64) for spill, ref in stored]
            ordered = np.sort(np.concatenate([*runs, run]))
            found.update(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
        return frozenset(found)

    def close(self) -> None:
        """Forget every hash, and close the spills they were in."""
        for spill in {spill for stored in self._stored for spill, _ in stored}:
            spill.close()
        self.held, self._spill = array("q"), None
        self._stored = [[] for _ in range(RANGES)]


def _ranges(hashes: array[int]) -> list[np.ndarray]:
    """The hashes sorted, cut into RANGES runs by value (hashes spread evenly over int64)."""
    import numpy as np

    ordered = np.sort(np.frombuffer(hashes, dtype=np.int64))
    step = (1 << 64) // RANGES
    edges = np.array([-(1 << 63) + step * n for n in range(1, RANGES)], dtype=np.int64)
    return np.split(ordered, np.searchsorted(ordered, edges))
