"""Room on disk for a big day's work, so that memory stays flat however big the snapshot.

Objects are pickled to an unlinked temporary file (nothing is left behind, even by `kill -9`)
and read back by the place `put` returned. A forked process may write to a Spill its parent
made and send the places back. Only renewd's own objects go in.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any

Place = tuple[int, int]  # offset, size


class Spill:
    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="renewd-")  # noqa: SIM115 - lives with self
        self._end = 0

    def put(self, value: Any) -> Place:
        data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        place = (self._end, len(data))
        os.pwrite(self._file.fileno(), data, self._end)
        self._end += len(data)
        return place

    def get(self, place: Place) -> Any:
        offset, size = place
        return pickle.loads(os.pread(self._file.fileno(), size, offset))  # noqa: S301 - our own

    def close(self) -> None:
        self._file.close()
