"""Shift windows of a scope: the current or previous shift of its calendar (the CLI's
``--shift``), and the window alert rules judge "current shift" OEE over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.masterdata import MasterData
from collector.queries.errors import QueryError
from collector.queries.oee import scope_calendar
from collector.queries.scope import EquipmentRef

#: Furthest back a shift may have started and still be looked for (a long weekend shift).
_LOOKBACK = timedelta(days=8)


@dataclass(frozen=True, slots=True)
class ShiftWindow:
    """``[start, end)`` in UTC and a label: ``"<shift> <day>"``, or ``"day <day>"``."""

    start: datetime
    end: datetime
    label: str
    from_calendar: bool
    """False when no calendar applies and the window is the host's local day."""


def shift_window(
    masterdata: MasterData, refs: Sequence[EquipmentRef], which: str, now: datetime
) -> tuple[datetime, datetime, str]:
    """The current or previous shift of the scope's calendar: (start, end, name)."""
    calendar, _tz = scope_calendar(masterdata, refs)
    if calendar is None:
        raise QueryError("shift", "no shift calendar applies here (masterdata); use --start/--end")
    shifts = calendar.shift_instances(now - _LOOKBACK, now + timedelta(seconds=1))
    if which == "current":
        found = [s for s in shifts if s.start <= now < s.end]
    else:
        found = [s for s in shifts if s.end <= now]
    if not found:
        raise QueryError("shift", f"no {which} shift at {now.isoformat()}")
    shift = found[-1]
    return shift.start, shift.end, f"{shift.name} {shift.day.isoformat()}"


def current_window(
    masterdata: MasterData, refs: Sequence[EquipmentRef], now: datetime
) -> ShiftWindow | None:
    """The shift in force at ``now`` for the scope of ``refs``; None between shifts.

    A scope without a calendar is planned 24/7 and has no shifts: its window is the
    current day in the collector host's local time zone (midnight to midnight).
    Overlapping shifts: the one that started last.
    """
    calendar, _tz = scope_calendar(masterdata, refs)
    if calendar is None:
        return _local_day(now)
    shifts = calendar.shift_instances(now - _LOOKBACK, now + timedelta(seconds=1))
    found = [s for s in shifts if s.start <= now < s.end]
    if not found:
        return None
    shift = found[-1]
    return ShiftWindow(shift.start, shift.end, f"{shift.name} {shift.day.isoformat()}", True)


def _local_day(now: datetime) -> ShiftWindow:
    day = now.astimezone().date()
    # a naive datetime's astimezone() is local wall time: right across DST changes
    start = datetime(day.year, day.month, day.day).astimezone()
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day).astimezone()
    return ShiftWindow(start.astimezone(UTC), end.astimezone(UTC), f"day {day.isoformat()}", False)
