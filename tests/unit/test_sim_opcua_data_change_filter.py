"""What a DataChangeFilter reports (OPC 10000-4 7.10, 7.22.2): the face's pure decision."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asyncua import ua
from hypothesis import given
from hypothesis import strategies as st

from simulators.faces.opcua.data_change_filter import beyond_absolute_deadband, reports_change

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
GOOD = ua.StatusCode()
BAD = ua.StatusCode(ua.StatusCodes.BadSensorFailure)
UNCERTAIN = ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)
STATUS = ua.DataChangeTrigger.Status
STATUS_VALUE = ua.DataChangeTrigger.StatusValue
STATUS_VALUE_TS = ua.DataChangeTrigger.StatusValueTimestamp
NONE = ua.DeadbandType.None_
ABSOLUTE = ua.DeadbandType.Absolute


def dv(value: Any, status: ua.StatusCode = GOOD, second: int = 0) -> ua.DataValue:
    variant = None if value is None else ua.Variant(value)
    ts = T0 + timedelta(seconds=second)
    return ua.DataValue(variant, status, ts, ts)


@pytest.mark.parametrize(
    ("last", "current", "trigger", "deadband_type", "deadband", "reported"),
    [
        # nothing reported yet: the first value always is
        (None, dv(1.0), STATUS, ABSOLUTE, 5.0, True),
        # absolute deadband: strictly beyond it, against the last reported value
        (dv(10.0), dv(14.9), STATUS_VALUE, ABSOLUTE, 5.0, False),
        (dv(10.0), dv(15.0), STATUS_VALUE, ABSOLUTE, 5.0, False),
        (dv(10.0), dv(15.5), STATUS_VALUE, ABSOLUTE, 5.0, True),
        (dv(10.0), dv(4.0), STATUS_VALUE, ABSOLUTE, 5.0, True),
        (dv(10), dv(16), STATUS_VALUE, ABSOLUTE, 5.0, True),
        # a status change is reported whatever the value did
        (dv(10.0), dv(10.5, UNCERTAIN), STATUS_VALUE, ABSOLUTE, 5.0, True),
        (dv(10.0), dv(None, BAD), STATUS_VALUE, ABSOLUTE, 5.0, True),
        (dv(None, BAD), dv(10.0), STATUS_VALUE, ABSOLUTE, 5.0, True),
        (dv(None, BAD), dv(None, BAD, second=3), STATUS_VALUE, ABSOLUTE, 5.0, False),
        # with a deadband, StatusValueTimestamp behaves as StatusValue
        (dv(10.0), dv(10.0, second=1), STATUS_VALUE_TS, ABSOLUTE, 5.0, False),
        (dv(10.0), dv(10.0, second=1), STATUS_VALUE_TS, NONE, 0.0, True),
        (dv(10.0), dv(10.0, second=1), STATUS_VALUE, NONE, 0.0, False),
        # trigger Status: only the StatusCode counts
        (dv(10.0), dv(99.0), STATUS, ABSOLUTE, 5.0, False),
        (dv(10.0), dv(99.0), STATUS, NONE, 0.0, False),
        (dv(10.0), dv(10.0, BAD), STATUS, NONE, 0.0, True),
        # no deadband: any change of the value
        (dv(10.0), dv(10.0000001), STATUS_VALUE, NONE, 0.0, True),
        (dv(10.0), dv(10.0), STATUS_VALUE, NONE, 0.0, False),
        # values that are not numbers: any difference
        (dv("a"), dv("b"), STATUS_VALUE, ABSOLUTE, 5.0, True),
        (dv("a"), dv("a"), STATUS_VALUE, ABSOLUTE, 5.0, False),
        (dv(True), dv(False), STATUS_VALUE, ABSOLUTE, 5.0, True),
        # arrays: any element beyond the deadband, or another length
        (dv([1.0, 2.0]), dv([1.5, 2.5]), STATUS_VALUE, ABSOLUTE, 1.0, False),
        (dv([1.0, 2.0]), dv([1.5, 3.5]), STATUS_VALUE, ABSOLUTE, 1.0, True),
        (dv([1.0, 2.0]), dv([1.0, 2.0, 3.0]), STATUS_VALUE, ABSOLUTE, 1.0, True),
        # NaN is reported when it comes or goes, not while it stays
        (dv(10.0), dv(math.nan), STATUS_VALUE, ABSOLUTE, 5.0, True),
        (dv(math.nan), dv(10.0), STATUS_VALUE, ABSOLUTE, 5.0, True),
        (dv(math.nan), dv(math.nan), STATUS_VALUE, ABSOLUTE, 5.0, False),
    ],
)
def test_reports_change(
    last: ua.DataValue | None,
    current: ua.DataValue,
    trigger: int,
    deadband_type: int,
    deadband: float,
    reported: bool,
) -> None:
    assert reports_change(last, current, trigger, deadband_type, deadband) is reported


def test_a_slow_drift_is_reported_once_it_leaves_the_deadband() -> None:
    """Compared with the last *reported* value, not the previous served one."""
    last: ua.DataValue | None = None
    queued = []
    for step in range(20):
        value = dv(10.0 + 0.5 * step, second=step)
        if reports_change(last, value, STATUS_VALUE, ABSOLUTE, 2.0):
            queued.append(value.Value.Value)
            last = value
    assert queued == [10.0, 12.5, 15.0, 17.5]  # 19.5 is exactly 2.0 from 17.5


numbers = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
statuses = st.sampled_from([GOOD, BAD, UNCERTAIN])


@given(
    old=numbers,
    new=numbers,
    old_status=statuses,
    new_status=statuses,
    trigger=st.sampled_from([STATUS, STATUS_VALUE, STATUS_VALUE_TS]),
    deadband=st.floats(min_value=0, max_value=1e3),
)
def test_status_changes_always_and_values_only_beyond_the_deadband(
    old: float,
    new: float,
    old_status: ua.StatusCode,
    new_status: ua.StatusCode,
    trigger: int,
    deadband: float,
) -> None:
    reported = reports_change(
        dv(old, old_status), dv(new, new_status, second=1), trigger, ABSOLUTE, deadband
    )
    if old_status != new_status:
        assert reported
    elif trigger == STATUS:
        assert not reported
    else:
        assert reported == (abs(new - old) > deadband)


@given(values=st.lists(numbers, min_size=1, max_size=40), deadband=st.floats(0, 100))
def test_what_is_held_back_stays_within_the_deadband_of_what_was_reported(
    values: list[float], deadband: float
) -> None:
    last: float | None = None
    for value in values:
        reported = reports_change(
            None if last is None else dv(last), dv(value), STATUS_VALUE, ABSOLUTE, deadband
        )
        if last is not None and not reported:
            assert abs(value - last) <= deadband
        if reported:
            assert last is None or abs(value - last) > deadband
            last = value


def test_beyond_absolute_deadband_of_nested_arrays() -> None:
    assert beyond_absolute_deadband([[1, 2], [3, 4]], [[1, 2], [3, 9]], 1.0)
    assert not beyond_absolute_deadband([[1, 2], [3, 4]], [[1, 2], [3, 4.5]], 1.0)
