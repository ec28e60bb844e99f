"""The events of the latest commits, kept in memory for the forwarder's live read.

The forwarder reads every live event right after the commit that captured it. Read back
from SQLite, that costs a statement step per row, and sqlite3 gives up the GIL on every
step: while the event loop derives a burst, each row then waits for the GIL again (up
to the interpreter's switch interval). The writer hands its committed rows here instead,
and the live read takes them from memory when they follow on from where it is.

Only committed rows come here (after COMMIT, so as durable as the ``durability``
setting makes any commit). Kept: rows not yet read past, at most ``max_events`` of the
newest. Anything else (the backlog, a reader that fell behind) is read from the file.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from itertools import islice
from typing import Any

from edge_agent.buffer.records import BufferedEvent

RECENT_MAX_EVENTS = 10_000
"""About 5 MB of ~500-byte events: a burst of 10,000 changes, or a second of them."""


class RecentEvents:
    """A contiguous run of the newest committed events (rowids ascending, no gaps)."""

    def __init__(self, max_events: int = RECENT_MAX_EVENTS) -> None:
        self._max_events = max_events
        self._events: deque[BufferedEvent] = deque()
        self._lock = threading.Lock()

    def committed(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Keep the rows of a commit (writer thread; ``_commit.Encoded.rows`` order)."""
        events = [BufferedEvent(row[0], row[1], row[2], row[5], row[7]) for row in rows]
        with self._lock:
            kept = self._events
            if kept and events and events[0].rowid != kept[-1].rowid + 1:
                kept.clear()  # not contiguous (never expected): start over
            kept.extend(events)
            for _ in range(len(kept) - self._max_events):
                kept.popleft()

    def clear(self) -> None:
        """Forget every kept event (rows were dropped from the file by a bound)."""
        with self._lock:
            self._events.clear()

    def after(self, rowid: int, limit: int) -> list[BufferedEvent] | None:
        """Up to ``limit`` committed events above ``rowid``, oldest first, or None when
        memory does not hold the event right after ``rowid`` (read the file instead).

        Events up to ``rowid`` are forgotten: the reader has them.
        """
        with self._lock:
            kept = self._events
            while kept and kept[0].rowid <= rowid:
                kept.popleft()
            if not kept or kept[0].rowid != rowid + 1:
                return None
            return list(islice(kept, limit))
