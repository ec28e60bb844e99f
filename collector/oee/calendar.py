"""Shift calendars (pure): weekly shifts with breaks, holidays and one-off exceptions,
evaluated in an IANA timezone into UTC planned time and break intervals.

Wall-clock times are turned into instants per shift, so a night shift 22:00-06:00 is
7 hours long on the spring-forward night and 9 hours on the fall-back night. A wall time
that does not exist (skipped hour) moves forward by the gap; an ambiguous one (repeated
hour) is its first occurrence (``fold=0``). No calendar means 24/7.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.oee import _intervals as iv
from collector.oee.errors import CalendarError
from collector.oee.inputs import TimeSpan

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Break:
    """A break inside a shift, in local wall time (before the shift start: next day)."""

    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Shift:
    """A weekly shift: ``weekdays`` (0 = Monday) it starts on, local ``start``-``end``.

    ``end <= start`` means the shift ends the next day (``end == start``: 24 hours).
    """

    name: str
    weekdays: frozenset[int]
    start: time
    end: time
    breaks: tuple[Break, ...] = ()


@dataclass(frozen=True, slots=True)
class CalendarException:
    """A one-off change: ``planned=True`` adds planned time (overtime), ``False`` removes
    it (shutdown, removes breaks too). Naive datetimes are local wall time."""

    start: datetime
    end: datetime
    planned: bool
    name: str = ""


@dataclass(frozen=True, slots=True)
class ShiftInstance:
    """One occurrence of a shift, in UTC; ``day`` is the local date it starts on."""

    name: str
    day: date
    start: datetime
    end: datetime
    breaks: tuple[TimeSpan, ...]


@dataclass(frozen=True, slots=True)
class PlannedTime:
    """Planned (busy) time and planned downtime (breaks) of a window, in UTC."""

    planned: tuple[TimeSpan, ...]
    breaks: tuple[TimeSpan, ...]
    shifts: tuple[ShiftInstance, ...]


@dataclass(frozen=True)
class ShiftCalendar:
    """Shifts by weekday in ``timezone``; shifts starting on a holiday do not run."""

    timezone: str
    shifts: tuple[Shift, ...]
    holidays: frozenset[date] = frozenset()
    exceptions: tuple[CalendarException, ...] = ()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CalendarError(
                f"calendar timezone {self.timezone!r} is not an IANA zone such as 'Europe/Berlin'"
            ) from exc
        for shift in self.shifts:
            bad = [d for d in shift.weekdays if not 0 <= d <= 6]
            if bad:
                raise CalendarError(f"shift {shift.name!r}: weekdays {bad} must be 0 (Mon) to 6")
            for t in (shift.start, shift.end, *(x for b in shift.breaks for x in (b.start, b.end))):
                if t.tzinfo is not None:
                    raise CalendarError(
                        f"shift {shift.name!r}: times are local wall times, drop the tzinfo"
                    )
        for exc_ in self.exceptions:
            if exc_.end <= exc_.start:
                raise CalendarError(f"calendar exception {exc_.name!r}: end is not after start")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _instant(self, local: datetime) -> datetime:
        if local.tzinfo is not None:
            return local.astimezone(UTC)
        return local.replace(tzinfo=self.zone).astimezone(UTC)

    def shift_instances(self, start: datetime, end: datetime) -> list[ShiftInstance]:
        """Shifts overlapping ``[start, end)`` (unclipped), in start order."""
        zone = self.zone
        first = start.astimezone(zone).date() - _DAY  # a night shift from the day before
        last = end.astimezone(zone).date()
        out = []
        day = first
        while day <= last:
            if day not in self.holidays:
                for shift in self.shifts:
                    if day.weekday() in shift.weekdays:
                        inst = self._instance(shift, day)
                        if inst.start < end and inst.end > start:
                            out.append(inst)
            day += _DAY
        out.sort(key=lambda s: (s.start, s.name))
        return out

    def _instance(self, shift: Shift, day: date) -> ShiftInstance:
        s_local = datetime.combine(day, shift.start)
        e_local = datetime.combine(day if shift.end > shift.start else day + _DAY, shift.end)
        s_utc, e_utc = self._instant(s_local), self._instant(e_local)
        breaks = []
        for b in shift.breaks:
            b_start = datetime.combine(day if b.start >= shift.start else day + _DAY, b.start)
            b_end = datetime.combine(
                b_start.date() if b.end > b.start else b_start.date() + _DAY, b.end
            )
            lo, hi = max(self._instant(b_start), s_utc), min(self._instant(b_end), e_utc)
            if lo < hi:
                breaks.append(TimeSpan(lo, hi))
        return ShiftInstance(shift.name, day, s_utc, e_utc, tuple(breaks))

    def planned_time(self, start: datetime, end: datetime) -> PlannedTime:
        """Planned time and breaks inside ``[start, end)`` in UTC."""
        w0, w1 = iv.to_us(start, "window start"), iv.to_us(end, "window end")
        shifts = self.shift_instances(start, end)
        planned = iv.normalize((iv.to_us(s.start), iv.to_us(s.end)) for s in shifts)
        breaks = iv.normalize(
            (iv.to_us(b.start), iv.to_us(b.end)) for s in shifts for b in s.breaks
        )
        extra = iv.normalize(
            (iv.to_us(self._instant(x.start)), iv.to_us(self._instant(x.end)))
            for x in self.exceptions
            if x.planned
        )
        closed = iv.normalize(
            (iv.to_us(self._instant(x.start)), iv.to_us(self._instant(x.end)))
            for x in self.exceptions
            if not x.planned
        )
        planned = iv.subtract(iv.normalize([*planned, *extra]), closed)
        planned = iv.clip(planned, w0, w1)
        breaks = iv.intersect(iv.subtract(breaks, extra), planned)
        return PlannedTime(_spans(planned), _spans(breaks), tuple(shifts))


def _spans(spans: Sequence[iv.Span]) -> tuple[TimeSpan, ...]:
    return tuple(TimeSpan(iv.from_us(s), iv.from_us(e)) for s, e in spans)


def planned_time(calendar: ShiftCalendar | None, start: datetime, end: datetime) -> PlannedTime:
    """Planned time of a window; ``None`` (no calendar) plans the whole window, 24/7."""
    if calendar is None:
        iv.to_us(start, "window start")
        iv.to_us(end, "window end")
        return PlannedTime((TimeSpan(start.astimezone(UTC), end.astimezone(UTC)),), (), ())
    return calendar.planned_time(start, end)
