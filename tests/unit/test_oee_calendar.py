"""Shift calendars across DST (Europe/Berlin), holidays, exceptions, bucket boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

import pytest

from collector.oee import (
    Break,
    CalendarError,
    CalendarException,
    CountRecord,
    OeeInputs,
    ProductionRun,
    Shift,
    ShiftCalendar,
    StateInterval,
    compute_oee,
    day_boundaries,
    hour_boundaries,
    planned_time,
)

BERLIN = "Europe/Berlin"
ALL_DAYS = frozenset(range(7))
NIGHT = Shift("night", ALL_DAYS, time(22), time(6), (Break(time(2, 0), time(2, 30)),))
EARLY = Shift("early", frozenset(range(5)), time(6), time(14), (Break(time(9), time(9, 15)),))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hours(td: timedelta) -> float:
    return td.total_seconds() / 3600


@pytest.mark.parametrize(
    ("night_of", "expected_hours", "start_utc", "end_utc"),
    [
        # An ordinary winter night (CET, UTC+1).
        (date(2026, 3, 21), 8, utc(2026, 3, 21, 21), utc(2026, 3, 22, 5)),
        # Spring forward: 2026-03-29 02:00 CET -> 03:00 CEST.
        (date(2026, 3, 28), 7, utc(2026, 3, 28, 21), utc(2026, 3, 29, 4)),
        # Fall back: 2026-10-25 03:00 CEST -> 02:00 CET.
        (date(2026, 10, 24), 9, utc(2026, 10, 24, 20), utc(2026, 10, 25, 5)),
    ],
)
def test_night_shift_length_across_dst(night_of, expected_hours, start_utc, end_utc) -> None:
    cal = ShiftCalendar(BERLIN, (NIGHT,))
    shifts = [s for s in cal.shift_instances(start_utc, end_utc) if s.day == night_of]
    assert len(shifts) == 1
    assert (shifts[0].start, shifts[0].end) == (start_utc, end_utc)
    assert hours(shifts[0].end - shifts[0].start) == expected_hours


def test_break_in_the_skipped_hour_moves_forward_and_planned_time_is_7_hours() -> None:
    # 02:00-02:30 does not exist on 2026-03-29; it becomes 03:00-03:30 CEST (01:00 UTC).
    cal = ShiftCalendar(BERLIN, (NIGHT,))
    pt = cal.planned_time(utc(2026, 3, 28, 20), utc(2026, 3, 29, 6))
    assert [(p.start, p.end) for p in pt.planned] == [(utc(2026, 3, 28, 21), utc(2026, 3, 29, 4))]
    assert [(b.start, b.end) for b in pt.breaks] == [(utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30))]


def test_break_in_the_repeated_hour_takes_the_first_occurrence() -> None:
    cal = ShiftCalendar(BERLIN, (NIGHT,))
    pt = cal.planned_time(utc(2026, 10, 24, 19), utc(2026, 10, 25, 6))
    assert [(b.start, b.end) for b in pt.breaks] == [
        (utc(2026, 10, 25, 0), utc(2026, 10, 25, 0, 30))
    ]


def test_oee_over_the_fall_back_night_uses_9_planned_hours() -> None:
    cal = ShiftCalendar(BERLIN, (NIGHT,))
    start, end = utc(2026, 10, 24, 20), utc(2026, 10, 25, 5)
    pt = cal.planned_time(start, end)
    inputs = OeeInputs(
        states=[StateInterval(start, None, "running")],
        counts=[CountRecord(end, 30600, 0)],
        runs=[ProductionRun(start, None, "p", 1.0)],
        planned=pt.planned,
        breaks=pt.breaks,
    )
    result = compute_oee(inputs, start, end)
    c = result.components
    assert c.planned_time_us == 9 * 3600 * 10**6
    # It ran through the break, so the break is production time: PBT = 9 h.
    assert c.planned_busy_time_us == 9 * 3600 * 10**6
    assert result.performance.value == Fraction(30600, 9 * 3600)


def test_holidays_and_exceptions() -> None:
    cal = ShiftCalendar(
        BERLIN,
        (EARLY,),
        holidays=frozenset({date(2026, 5, 1)}),  # Friday
        exceptions=(
            CalendarException(datetime(2026, 5, 2, 8), datetime(2026, 5, 2, 12), True, "overtime"),
            CalendarException(
                datetime(2026, 4, 30, 8), datetime(2026, 4, 30, 10), False, "maintenance"
            ),
        ),
    )
    pt = cal.planned_time(utc(2026, 4, 30), utc(2026, 5, 3))
    spans = [(p.start, p.end) for p in pt.planned]
    assert spans == [
        (utc(2026, 4, 30, 4), utc(2026, 4, 30, 6)),  # Thursday 06:00-08:00 CEST
        (utc(2026, 4, 30, 8), utc(2026, 4, 30, 12)),  # 10:00-14:00 after maintenance
        (utc(2026, 5, 2, 6), utc(2026, 5, 2, 10)),  # Saturday overtime
    ]
    # The Thursday break 09:00-09:15 fell into the maintenance closure.
    assert pt.breaks == ()
    assert [s.day for s in pt.shifts] == [date(2026, 4, 30)]


def test_no_calendar_is_24_7() -> None:
    pt = planned_time(None, utc(2026, 1, 1), utc(2026, 1, 2))
    assert [(p.start, p.end) for p in pt.planned] == [(utc(2026, 1, 1), utc(2026, 1, 2))]
    assert pt.breaks == ()


def test_bad_calendars_are_refused() -> None:
    with pytest.raises(CalendarError, match="not an IANA zone"):
        ShiftCalendar("Mars/Olympus", ())
    with pytest.raises(CalendarError, match="weekdays"):
        ShiftCalendar(BERLIN, (Shift("x", frozenset({7}), time(6), time(14)),))


def test_day_buckets_are_23_and_25_hours_on_dst_days() -> None:
    spring = day_boundaries(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), BERLIN)
    assert spring == [utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)]
    assert hours(spring[1] - spring[0]) == 23
    fall = day_boundaries(utc(2026, 10, 24, 22), utc(2026, 10, 26, 23), BERLIN)
    assert fall == [utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), utc(2026, 10, 26, 23)]
    assert hours(fall[1] - fall[0]) == 25


def test_hour_buckets_follow_the_local_clock() -> None:
    fall = hour_boundaries(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), BERLIN)
    assert len(fall) - 1 == 25
    kolkata = hour_boundaries(utc(2026, 1, 5, 0), utc(2026, 1, 5, 3), "Asia/Kolkata")
    assert kolkata == [
        utc(2026, 1, 5, 0),
        utc(2026, 1, 5, 0, 30),
        utc(2026, 1, 5, 1, 30),
        utc(2026, 1, 5, 2, 30),
        utc(2026, 1, 5, 3),
    ]
