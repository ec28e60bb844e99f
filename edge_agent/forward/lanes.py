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
from itertools import repeat
from operator import attrgetter, contains

from edge_agent.forward.batching import Target, Targets, event_cost
from edge_agent.forward.buffer_api import BufferedEventLike
from lineside_protocol import MAX_BATCH_BYTES

_body = attrgetter("body")
_EQUIPMENT_KEY = b'"equipment":'
_rowid = attrgetter("rowid")


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
        self._extra = event_cost(b"", historical)  # bytes an event adds besides its body
        self._marker_at: dict[Target, int] = {}  # where the marker was in the last body
        self._open: dict[Target, _OpenBatch] = {}
        self._opened_at = float("-inf")  # when the newest open batch was opened
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
        of a backlog drain (every event passes here): events are grouped per equipment
        first, and each group is checked and appended with whole-list operations.
        """
        groups: dict[str, list[BufferedEventLike]] = {}
        found = groups.get
        for event in events:
            group = found(event.equipment)
            if group is None:
                groups[event.equipment] = [event]
            else:
                group.append(event)
        unsendable: list[BufferedEventLike] = []
        known = self._targets.by_name
        for name, group in groups.items():
            bodies = list(map(_body, group))
            target = known.get(name)
            sizes = list(map(len, bodies))
            if (
                target is None
                or not self._all_name(target, bodies)
                or target.header_bytes + max(sizes) + self._extra > MAX_BATCH_BYTES
            ):  # a new or moved equipment, or an event too large: one by one
                self._add_one_by_one(group, now, unsendable)
            else:
                self._append(target, list(map(_rowid, group)), bodies, sizes, now)
        if len(groups) > 1 and len(unsendable) > 1:
            unsendable.sort(key=_rowid)
        return unsendable

    def _all_name(self, target: Target, bodies: list[bytes]) -> bool:
        """True when every body contains ``target.marker`` (names the target's path).

        ``marker in body`` costs ~0.9 us on a 500-byte body (CPython prepares the long
        needle on every call), so the cheaper checks that imply it come first: the
        marker at the offset it had last time (events of one equipment and type look
        alike), then the marker where the first ``"equipment":`` key starts.
        """
        marker = target.marker
        offset = self._marker_at.get(target, -1)
        if offset >= 0 and all(map(bytes.startswith, bodies, repeat(marker), repeat(offset))):
            return True
        self._marker_at[target] = bodies[-1].find(marker)
        keys_at = map(bytes.find, bodies, repeat(_EQUIPMENT_KEY))
        return all(map(bytes.startswith, bodies, repeat(marker), keys_at)) or all(
            map(contains, bodies, repeat(marker))
        )

    def _append(
        self, target: Target, rowids: list[int], bodies: list[bytes], sizes: list[int], now: float
    ) -> None:
        """Append one equipment's sendable events, sealing batches as they fill up."""
        opened, extra = self._open, self._extra
        max_events, max_bytes = self._max_events, self._max_bytes
        start, count = 0, len(rowids)
        while start < count:
            batch = opened.get(target)
            if batch is None:
                # opened_at never decreases along _open (a dict keeps insertion order), so
                # the oldest open batch is always the first: the pump asks on every round
                self._opened_at = now = max(now, self._opened_at)
                batch = opened[target] = _OpenBatch([], [], target.header_bytes, now)
            limit = min(count, start + max_events - len(batch.rowids))  # room: at least 1
            end = limit
            size = batch.size + sum(sizes[start:end]) + extra * (end - start)
            if size > max_bytes:  # fill up to max_bytes (a lone event goes in regardless)
                end, size = start, batch.size
                while end < limit and size + sizes[end] + extra <= max_bytes:
                    size += sizes[end] + extra
                    end += 1
                if end == start and not batch.rowids:
                    size += sizes[end] + extra
                    end += 1
            batch.bodies += bodies[start:end]
            batch.rowids += rowids[start:end]
            self.open_events += end - start
            batch.size = size
            if end < count or len(batch.rowids) >= max_events:
                self._seal(target, batch)
            start = end

    def _add_one_by_one(
        self, events: list[BufferedEventLike], now: float, unsendable: list[BufferedEventLike]
    ) -> None:
        targets = self._targets
        for event in events:
            target = targets.for_event(event.equipment, event.body)
            if target is None or target.header_bytes + len(event.body) + self._extra > (
                MAX_BATCH_BYTES
            ):
                unsendable.append(event)
                continue
            self._append(target, [event.rowid], [event.body], [len(event.body)], now)

    def seal_opened_before(self, cutoff: float) -> None:
        """Seal every open batch whose first event arrived at or before ``cutoff``."""
        # _open is in opening order (see _append): stop at the first younger batch
        while self._open:
            target, batch = next(iter(self._open.items()))
            if batch.opened_at > cutoff:
                return
            self._seal(target, batch)

    def seal_all(self) -> None:
        """Seal every open batch (end of the backlog, or stopping)."""
        for target, batch in list(self._open.items()):
            self._seal(target, batch)

    def oldest_open_at(self) -> float | None:
        """When the oldest open batch got its first event, or None."""
        for batch in self._open.values():
            return batch.opened_at  # the first one: _open is in opening order
        return None

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
