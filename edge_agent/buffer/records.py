"""Plain records the buffer hands out: a buffered event and a range of dropped events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

DropReason = Literal["max_bytes", "max_age"]


class BufferedEvent(NamedTuple):
    """One committed event as the forwarder reads it.

    A NamedTuple rather than a dataclass: a backlog drain reads every event once, and a
    tuple built straight from the SQLite row costs a fraction of a dataclass instance.
    """

    rowid: int
    """Position in the buffer; ascending in commit order, never reused by one file."""
    equipment: str
    seq: int
    captured_ms: int
    """Unix time in milliseconds of the commit that captured the event."""
    body: bytes
    """``orjson.dumps(wire event)``: starts with ``b"{"``, has no ``historical`` key."""


@dataclass(frozen=True, slots=True)
class DroppedRange:
    """Events of one equipment dropped in one go because a bound of the buffer was hit.

    ``first_*`` and ``last_*`` describe the oldest and newest dropped event (in buffer
    order). ``dropped_events`` can be smaller than ``last_seq - first_seq + 1``: events in
    between may already have been delivered and deleted.
    """

    equipment: str
    dropped_events: int
    first_seq: int
    last_seq: int
    first_event_time: str
    last_event_time: str
    reason: DropReason


class DropTally:
    """Accumulates dropped events, in buffer order, into one ``DroppedRange`` per equipment."""

    def __init__(self, reason: DropReason) -> None:
        self.reason: DropReason = reason
        self._ranges: dict[str, list] = {}

    def add(self, equipment: str, seq: int, event_time: str) -> None:
        found = self._ranges.get(equipment)
        if found is None:
            self._ranges[equipment] = [1, seq, seq, event_time, event_time]
        else:
            found[0] += 1
            found[2] = seq
            found[4] = event_time

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def counts(self) -> dict[str, int]:
        """Dropped events per equipment."""
        return {equipment: found[0] for equipment, found in self._ranges.items()}

    def ranges(self) -> list[DroppedRange]:
        return [
            DroppedRange(equipment, count, first_seq, last_seq, first_time, last_time, self.reason)
            for equipment, (count, first_seq, last_seq, first_time, last_time) in (
                self._ranges.items()
            )
        ]
