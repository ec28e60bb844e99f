"""Bucket boundaries (hour, day, shift) for ``compute_oee_buckets``.

Hours and days follow the wall clock of a timezone, so a local day across a DST change
is 23 or 25 hours long. Shift boundaries come from the caller (or ``ShiftCalendar``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from collector.oee._intervals import to_us
from collector.oee.errors import OeeInputError

_QUARTER = timedelta(minutes=15)


def _check(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    to_us(start, "window start")
    to_us(end, "window end")
    if end <= start:
        raise OeeInputError(f"window end {end.isoformat()} is not after start {start.isoformat()}")
    return start.astimezone(UTC), end.astimezone(UTC)


def _with_ends(inner: Iterable[datetime], start: datetime, end: datetime) -> list[datetime]:
    return [start, *sorted({b for b in inner if start < b < end}), end]


def hour_boundaries(start: datetime, end: datetime, tz: str = "UTC") -> list[datetime]:
    """``start``, every local full hour strictly inside the window, ``end`` (UTC)."""
    start, end = _check(start, end)
    zone = ZoneInfo(tz)
    # Every UTC offset in use is a multiple of 15 minutes, so local full hours lie on
    # the UTC quarter-hour grid; this also handles half-hour zones and DST shifts.
    t = start.replace(minute=start.minute - start.minute % 15, second=0, microsecond=0)
    inner = []
    while t < end:
        local = t.astimezone(zone)
        if local.minute == 0 and local.second == 0:
            inner.append(t)
        t += _QUARTER
    return _with_ends(inner, start, end)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """UTC instant of the local start of ``day`` (a skipped midnight moves forward)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def day_boundaries(start: datetime, end: datetime, tz: str = "UTC") -> list[datetime]:
    """``start``, every local midnight strictly inside the window, ``end`` (UTC)."""
    start, end = _check(start, end)
    zone = ZoneInfo(tz)
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    inner = []
    while day <= last:
        inner.append(local_midnight(day, zone))
        day += timedelta(days=1)
    return _with_ends(inner, start, end)


def boundaries_from_spans(
    spans: Iterable[tuple[datetime, datetime]], start: datetime, end: datetime
) -> list[datetime]:
    """Window ends plus every span start and end inside the window (shift buckets).

    Time between shifts becomes buckets of its own, which the caller may drop.
    """
    start, end = _check(start, end)
    inner = [t.astimezone(UTC) for span in spans for t in span]
    return _with_ends(inner, start, end)
