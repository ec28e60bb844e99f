"""Per-equipment sequence numbers, allocated in memory and persisted by the buffer.

The collector detects lost events by gaps in these numbers, so a number is never
skipped and a number that reached the collector is never reused. Allocation is a dict
update on the event loop (no I/O on the hot path); the store-and-forward buffer saves
``max(seq) + 1`` per equipment in the same transaction as the events themselves, and
seeds this counter from it at start. After a crash the numbers therefore continue
right after the last *committed* event: numbers of events that were never committed
are reused, which is safe because those events were never captured nor sent.
"""

from __future__ import annotations

from collections.abc import Mapping


class SequenceCounter:
    def __init__(self, next_numbers: Mapping[str, int] | None = None) -> None:
        self._next: dict[str, int] = dict(next_numbers or {})

    def allocate(self, equipment: str, count: int) -> range:
        """Reserve ``count`` consecutive numbers for ``equipment``."""
        return self.allocate_many({equipment: count}).get(equipment, range(0))

    def allocate_many(self, counts: Mapping[str, int]) -> dict[str, range]:
        """Reserve numbers for several equipment at once (equipment with 0 get none)."""
        out: dict[str, range] = {}
        for equipment, count in counts.items():
            if count > 0:
                first = self._next.get(equipment, 0)
                self._next[equipment] = first + count
                out[equipment] = range(first, first + count)
        return out

    def next_numbers(self) -> dict[str, int]:
        """The next number per equipment (a copy)."""
        return dict(self._next)
