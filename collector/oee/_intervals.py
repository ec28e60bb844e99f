"""Interval arithmetic on integer microseconds since the Unix epoch (UTC).

Integers keep every sum exact: splitting a window into buckets and adding the buckets
back gives the same total to the microsecond, which float seconds would not.
Intervals are half-open ``(start_us, end_us)`` tuples with ``start_us < end_us``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from collector.oee.errors import OeeInputError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

Span = tuple[int, int]


def to_us(value: datetime, what: str = "timestamp") -> int:
    """Microseconds since the epoch of a timezone-aware datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise OeeInputError(f"{what} {value.isoformat()} has no timezone; pass aware UTC times")
    return (value - _EPOCH) // _US


def from_us(value_us: int) -> datetime:
    """The UTC datetime of microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value_us)


def normalize(spans: Iterable[Span]) -> list[Span]:
    """Sorted, disjoint, merged spans; empty or reversed spans are dropped."""
    ordered = sorted((s, e) for s, e in spans if e > s)
    merged: list[Span] = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def clip(spans: Iterable[Span], start: int, end: int) -> list[Span]:
    """The parts of ``spans`` inside ``[start, end)``, normalized."""
    return normalize((max(s, start), min(e, end)) for s, e in spans)


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """Intersection of two normalized span lists."""
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """``a`` minus ``b``, both normalized."""
    out: list[Span] = []
    j = 0
    for start, end in a:
        cursor = start
        while j < len(b) and b[j][1] <= cursor:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                out.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def total(spans: Iterable[Span]) -> int:
    """Summed length of (disjoint) spans."""
    return sum(e - s for s, e in spans)


def overlap(start: int, end: int, spans: Sequence[Span], starts: Sequence[int]) -> int:
    """Length of ``[start, end)`` covered by normalized ``spans`` (``starts`` = their starts).

    Bisecting keeps this cheap when a 30-day window holds a hundred shifts.
    """
    covered = 0
    i = max(bisect_right(starts, start) - 1, 0)
    while i < len(spans) and spans[i][0] < end:
        s, e = spans[i]
        lo, hi = max(s, start), min(e, end)
        if lo < hi:
            covered += hi - lo
        i += 1
    return covered
