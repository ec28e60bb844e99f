"""Whether a served value is reported under a monitored item's DataChangeFilter (pure).

OPC 10000-4 7.10 and 7.22.2 say what a DataChangeFilter reports:

- Trigger Status: a change of the StatusCode only. StatusValue: a change of the
  StatusCode or of the value. StatusValueTimestamp: also of the SourceTimestamp, except
  that with a deadband it behaves as StatusValue.
- An absolute deadband filters *value* changes: a value is reported when it differs
  from the last value reported (queued) by more than the deadband. A StatusCode change
  is always reported.

asyncua 2.1's server differs in three ways, which is why the face decides here: it
compares with the previous *served* value (a slow drift is never reported), it holds
back a StatusCode change whose value moved less than the deadband, and it raises
TypeError when one of the values is null, as a Bad value without a value is (the Bad
notification was then lost).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asyncua import ua

STATUS = ua.DataChangeTrigger.Status
STATUS_VALUE_TIMESTAMP = ua.DataChangeTrigger.StatusValueTimestamp
ABSOLUTE = ua.DeadbandType.Absolute


def reports_change(
    last_reported: ua.DataValue | None,
    current: ua.DataValue,
    trigger: int,
    deadband_type: int,
    deadband_value: float,
) -> bool:
    """True when ``current`` is to be queued, given the item's last queued value.

    ``last_reported`` None means nothing was reported yet: the first value always is.
    """
    if last_reported is None:
        return True
    if _status(last_reported) != _status(current):
        return True
    if trigger == STATUS:
        return False
    old, new = _value(last_reported), _value(current)
    if deadband_type == ABSOLUTE:
        return beyond_absolute_deadband(old, new, deadband_value)
    if old != new:
        return True
    return trigger == STATUS_VALUE_TIMESTAMP and (
        last_reported.SourceTimestamp != current.SourceTimestamp
        or last_reported.SourcePicoseconds != current.SourcePicoseconds
    )


def beyond_absolute_deadband(old: Any, new: Any, deadband: float) -> bool:
    """``abs(new - old) > deadband`` for numbers, element by element for arrays.

    An array whose length changed is reported whole, as the spec says. NaN is reported
    when it comes or goes. Values that are not numbers (null, text, booleans) are
    reported when they differ at all.
    """
    if _is_number(old) and _is_number(new):
        if old != old or new != new:  # NaN: reported when it comes or goes
            return (old != old) != (new != new)
        return abs(new - old) > deadband
    if _is_sequence(old) and _is_sequence(new):
        if len(old) != len(new):
            return True
        return any(beyond_absolute_deadband(a, b, deadband) for a, b in zip(old, new, strict=True))
    return bool(old != new)


def _status(data: ua.DataValue) -> int:
    code = data.StatusCode
    return ua.StatusCodes.Good if code is None else code.value


def _value(data: ua.DataValue) -> Any:
    variant = data.Value
    return None if variant is None else variant.Value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)
