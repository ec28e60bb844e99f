"""Sizes of the rows committed by this process, by rowid (writer thread only).

The buffer's byte total must drop by exactly the size of each row a delete removes, and
an acknowledged id may be deleted twice or be gone already (dropped by a bound). Asking
SQLite (``SELECT count(*), sum(size)`` over the deleted ids) cost about half a
microsecond per deleted row, a quarter of the delete itself. The writer knows the size
of every row it inserted, and rowids are dense (one per committed event, never reused),
so it keeps them in an array indexed by ``rowid - base``: 4 bytes per buffered event,
0 for a row that is gone. Rows committed before this process started (below ``base``)
are not tracked; their deletes are counted by SQLite as before.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

Runs = Sequence[tuple[int, int]]
_TRIM_STEP = 4096  # leading zeros are dropped in steps of this many rowids
MAX_TRACKED_ROWS = 4_000_000
"""At most 16 MB of sizes: when one undelivered event holds the front of the buffer for
long, the rows behind it are counted by SQLite when they go."""


class RowSizes:
    """``size`` of each row at or above ``base`` that this process committed."""

    def __init__(self, base: int) -> None:
        self.base = base
        """Lowest tracked rowid: the first one this process hands out."""
        self._sizes = array("I")

    def __len__(self) -> int:
        return len(self._sizes)

    def added(self, first_rowid: int, sizes: Iterable[int]) -> None:
        """Committed rows ``first_rowid, first_rowid + 1, ...`` with these sizes."""
        tracked = self._sizes
        gap = first_rowid - self.base - len(tracked)
        if gap > 0:
            tracked.extend(array("I", [0]) * gap)
        elif gap < 0:  # never expected (rowids are not reused); stay exact regardless
            del tracked[max(0, first_rowid - self.base) :]
            self.base = min(self.base, first_rowid)
        tracked.extend(sizes)
        excess = len(tracked) - MAX_TRACKED_ROWS
        if excess > 0:  # an old event held the front for long: SQLite counts that part
            del tracked[:excess]
            self.base += excess

    def measure(self, runs: Runs, singles: Sequence[int]) -> tuple[int, int]:
        """Rows still present among these rowids (``contiguous_runs``) and their bytes;
        rowids outside the tracked span count as absent."""
        sizes, base, end = self._sizes, self.base, self.base + len(self._sizes)
        count = total = 0
        for first, last in runs:
            part = sizes[max(first, base) - base : min(last + 1, end) - base]
            count += len(part) - part.count(0)
            total += sum(part)
        for rowid in singles:
            if base <= rowid < end and (size := sizes[rowid - base]):
                count, total = count + 1, total + size
        return count, total

    def forget(self, runs: Runs, singles: Sequence[int]) -> None:
        """The tracked rows (``contiguous_runs``) were deleted."""
        sizes, base, end = self._sizes, self.base, self.base + len(self._sizes)
        for first, last in runs:
            start, stop = max(first, base) - base, min(last + 1, end) - base
            if start < stop:
                sizes[start:stop] = array("I", [0]) * (stop - start)
        for rowid in singles:
            if base <= rowid < end:
                sizes[rowid - base] = 0
        self._trim()

    def forget_through(self, last: int | None) -> None:
        """Every row up to ``last`` was deleted (dropped by a bound); None: none was."""
        if last is None or last < self.base:
            return
        stop = min(last + 1 - self.base, len(self._sizes))
        del self._sizes[:stop]
        self.base += stop
        if not self._sizes:
            self.base = max(self.base, last + 1)

    def _trim(self) -> None:
        """Drop leading rows that are gone, so the array covers only the buffered span."""
        sizes = self._sizes
        dropped = 0
        while (
            len(sizes) - dropped >= _TRIM_STEP
            and sizes[dropped : dropped + _TRIM_STEP].count(0) == _TRIM_STEP
        ):
            dropped += _TRIM_STEP
        if dropped:
            del sizes[:dropped]
            self.base += dropped
