"""The two lanes of the forwarder: live events and the backlog, and the backlog's pace (pure).

At every (re)connect, what the buffer holds up to its last committed rowid becomes
backlog (sent with ``historical: true``, paced by a token bucket); anything committed
later is live (``historical: false``) and goes first. A :class:`Lane` groups its events
per equipment into batches; :class:`BacklogRanges` remembers which rowid ranges are
still to be replayed; :class:`TokenBucket` paces the replay.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.forward.batching import Target, Targets, event_cost
from edge_agent.forward.buffer_api import BufferedEventLike
from lineside_protocol import MAX_BATCH_BYTES


@dataclass(slots=True)
class SealedBatch:
    """Events of one equipment ready to be published as one message."""

    target: Target
    bodies: list[bytes]
    rowids: list[int]
    historical: bool


@dataclass(slots=True)
class _OpenBatch:
    bodies: list[bytes]
    rowids: list[int]
    size: int
    opened_at: float


class Lane:
    """Groups events per equipment, in rowid order, into batches within the size limits."""

    def __init__(self, historical: bool, max_events: int, max_bytes: int, targets: Targets) -> None:
        self.historical = historical
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._targets = targets
        self._open: dict[Target, _OpenBatch] = {}
        self.ready: deque[SealedBatch] = deque()
        self.open_events = 0
        self.ready_events = 0

    @property
    def pending_events(self) -> int:
        """Events read from the buffer and not yet published."""
        return self.open_events + self.ready_events

    def add(self, events: Sequence[BufferedEventLike], now: float) -> list[BufferedEventLike]:
        """Add events (ascending rowids); returns the ones that can never be sent.

        An event is unsendable when its equipment path cannot name a topic or when a
        batch of it alone would exceed the protocol's 1 MiB limit. This is the hot path
        of a backlog drain (every event passes here), hence the local variables.
        """
        unsendable: list[BufferedEventLike] = []
        opened = self._open
        targets = self._targets
        known = targets.by_name
        extra = event_cost(b"", self.historical)
        max_bytes, max_events = self._max_bytes, self._max_events
        added = 0
        for event in events:
            body = event.body
            target = known.get(event.equipment)
            if target is None or target.marker not in body:
                target = targets.for_event(event.equipment, body)
                if target is None:
                    unsendable.append(event)
                    continue
            cost = len(body) + extra
            if target.header_bytes + cost > MAX_BATCH_BYTES:
                unsendable.append(event)
                continue
            batch = opened.get(target)
            if batch is not None and batch.size + cost > max_bytes:
                self._seal(target, batch)
                batch = None
            if batch is None:
                batch = opened[target] = _OpenBatch([], [], target.header_bytes, now)
            batch.bodies.append(body)
            batch.rowids.append(event.rowid)
            batch.size += cost
            added += 1
            if len(batch.rowids) >= max_events:
                self._seal(target, batch)
        self.open_events += added  # (_seal subtracted the sealed ones already)
        return unsendable

    def seal_opened_before(self, cutoff: float) -> None:
        """Seal every open batch whose first event arrived at or before ``cutoff``."""
        for target, batch in list(self._open.items()):
            if batch.opened_at <= cutoff:
                self._seal(target, batch)

    def seal_all(self) -> None:
        """Seal every open batch (end of the backlog, or stopping)."""
        for target, batch in list(self._open.items()):
            self._seal(target, batch)

    def oldest_open_at(self) -> float | None:
        """When the oldest open batch got its first event, or None."""
        return min((batch.opened_at for batch in self._open.values()), default=None)

    def take_ready(self) -> SealedBatch:
        """The next sealed batch (FIFO: per equipment in rowid order)."""
        batch = self.ready.popleft()
        self.ready_events -= len(batch.rowids)
        return batch

    def _seal(self, target: Target, batch: _OpenBatch) -> None:
        del self._open[target]
        self.open_events -= len(batch.rowids)
        self.ready_events += len(batch.rowids)
        self.ready.append(SealedBatch(target, batch.bodies, batch.rowids, self.historical))


class BacklogRanges:
    """Rowid ranges ``(after, end]`` still to be replayed, oldest first."""

    def __init__(self) -> None:
        self._ranges: deque[list[int]] = deque()

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def add(self, after: int, end: int) -> None:
        """Add the range of rowids above ``after`` up to and including ``end``."""
        if end <= after:
            return
        if self._ranges and self._ranges[-1][1] == after:
            self._ranges[-1][1] = end
        else:
            self._ranges.append([after, end])

    def next_read(self) -> int:
        """The rowid to read after; only call when there is a range left."""
        return self._ranges[0][0]

    def take(self, rows: Sequence[BufferedEventLike], limit: int) -> Sequence[BufferedEventLike]:
        """Given ``read_after(next_read(), limit)``, keep the rows in the range and advance."""
        current = self._ranges[0]
        end = current[1]
        inside = rows
        if rows and rows[-1].rowid > end:
            inside = [row for row in rows if row.rowid <= end]
        if len(rows) < limit or len(inside) < len(rows) or rows[-1].rowid >= end:
            self._ranges.popleft()
        else:
            current[0] = rows[-1].rowid
        return inside

    def remaining_estimate(self) -> int:
        """Rowids left in the ranges (an upper bound: some may be gone from the buffer)."""
        return sum(end - after for after, end in self._ranges)


class TokenBucket:
    """Events per second with a burst allowance; ``rate=None`` means unlimited."""

    def __init__(self, rate_per_s: float | None, burst: float, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._at = now

    def available(self, now: float) -> float:
        """Tokens available now (``inf`` when unlimited)."""
        if self.rate_per_s is None:
            return float("inf")
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        return self._tokens

    def take(self, count: int, now: float) -> None:
        """Spend ``count`` tokens (may go negative after a read returned more than asked)."""
        if self.rate_per_s is not None:
            self.available(now)
            self._tokens -= count

    def seconds_until(self, count: float, now: float) -> float:
        """Time until ``count`` tokens are available (0 when they already are)."""
        if self.rate_per_s is None:
            return 0.0
        missing = min(count, self.burst) - self.available(now)
        return max(0.0, missing / self.rate_per_s)
