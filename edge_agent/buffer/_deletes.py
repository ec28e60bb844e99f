"""Deletes of delivered events, held back a little and applied in page-friendly groups.

Why not delete at the next group commit: the forwarder batches events per equipment,
so one confirmed batch is every 100th row or so, and the rows of one 16 KiB page
belong to dozens of batches confirmed over the next second. Deleting at every commit
(each ``commit_interval_ms``) rewrote each page into the WAL once per commit that
touched it: ~15 us per deleted row during a backlog drain. Holding the confirmed
rowids for up to ``DELETE_DELAY_S`` turns them into long runs of consecutive rowids
that are deleted as ranges, each page once: ~2 us per row.

Due deletes go ``DELETE_CHUNK_ROWS`` per transaction, so that events captured
meanwhile are committed between two chunks rather than after the whole group.

The hold never changes what survives a crash (a delete lost in a crash only means
those events are sent again). ``flush``, ``close`` and the size and age bounds apply
all held deletes at once, so the totals are exact whenever they are acted upon.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

DELETE_DELAY_S = 0.5
"""How long confirmed rowids are held before they are deleted (also the lag of the
buffer's totals)."""
DELETE_GROUP_ROWS = 100_000
"""Held rowids are deleted sooner when this many are waiting."""
DELETE_CHUNK_ROWS = 10_000
"""Most held rowids deleted in one transaction: a live event committed meanwhile waits
for one chunk (some 25 ms of SQLite work), not for the whole group."""


class HeldDeletes:
    """Rowids confirmed for deletion and not deleted yet (writer thread only).

    Rowids arrive in any order. When they are due, they are sorted once into a plan that
    is deleted chunk by chunk, one chunk per transaction; rowids arriving meanwhile wait
    for the next plan.
    """

    def __init__(self) -> None:
        self._arrived: list[int] = []
        self._since = 0.0
        """Monotonic time the oldest rowid in ``_arrived`` came."""
        self._planned: list[int] = []
        self._next = 0
        """Index in ``_planned`` of the first rowid not deleted yet."""

    def __len__(self) -> int:
        return len(self._arrived) + len(self._planned) - self._next

    def hold(self, rowids: Iterable[int], now: float) -> None:
        """Add rowids to delete later."""
        if not self._arrived:
            self._since = now
        self._arrived.extend(rowids)

    def due_at(self) -> float | None:
        """When the next deletes are due (now, while a plan is under way); None if idle."""
        if self._next < len(self._planned):
            return 0.0
        if self._arrived:
            return self._since + DELETE_DELAY_S
        return None

    def is_due(self, now: float) -> bool:
        if self._next < len(self._planned):
            return True
        return bool(self._arrived) and (
            len(self._arrived) >= DELETE_GROUP_ROWS or now >= self._since + DELETE_DELAY_S
        )

    def take(self, now: float, everything: bool) -> list[int]:
        """Rowids to delete in this transaction: the next chunk of the plan, or (with
        ``everything``) all that are held. Undo with :meth:`restore` if it fails."""
        if everything:
            taken = self._planned[self._next :] + self._arrived
            self._arrived, self._planned, self._next = [], [], 0
            return taken
        if self._next >= len(self._planned):
            if not self.is_due(now):
                return []
            # batches arrive as ascending lists: sorted() merges those runs cheaply
            self._planned, self._next, self._arrived = sorted(self._arrived), 0, []
        taken = self._planned[self._next : self._next + DELETE_CHUNK_ROWS]
        self._next += len(taken)
        return taken

    def savepoint(self) -> tuple[list[int], int, float, list[int], int]:
        """State to go back to when the transaction fails (see :meth:`restore`)."""
        return self._arrived, len(self._arrived), self._since, self._planned, self._next

    def restore(self, savepoint: tuple[list[int], int, float, list[int], int]) -> None:
        arrived, count, self._since, self._planned, self._next = savepoint
        del arrived[count:]
        self._arrived = arrived

    def clear(self) -> None:
        self._arrived, self._planned, self._next = [], [], 0


def contiguous_runs(rowids: Iterable[int], min_run: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Split rowids into runs of consecutive ids and the ids outside long enough runs.

    Returns ``(runs, singles)``: ``runs`` are ``(first, last)`` pairs covering at least
    ``min_run`` ids each, ascending; ``singles`` holds every other id, ascending.
    Duplicates and the order of the input do not matter.
    """
    ordered = sorted(rowids)
    runs: list[tuple[int, int]] = []
    singles: list[int] = []
    if not ordered:
        return runs, singles
    first = previous = ordered[0]
    for current in islice(ordered, 1, None):
        if current - previous > 1:  # a gap ends the run (a duplicate does not)
            if previous - first + 1 >= min_run:
                runs.append((first, previous))
            else:
                singles.extend(range(first, previous + 1))
            first = current
        previous = current
    if previous - first + 1 >= min_run:
        runs.append((first, previous))
    else:
        singles.extend(range(first, previous + 1))
    return runs, singles
