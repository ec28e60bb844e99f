"""The fast path's payload checks: one per event type, True only when certainly valid.

Each reads its fields by subscript when the payload has exactly its known keys (what
the Lineside agent sends), else through ``loose_fields`` (absent optional fields take
their defaults). The vocabularies come from ``lineside_protocol``'s own Literal types,
so a new state or reason there is known here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

from lineside_protocol.events import EndReason, OverflowReason, TagQuality
from lineside_protocol.states import EquipmentState

from ._shapes import loose_fields, plain_float, timestamp

_STATES = frozenset(get_args(EquipmentState))
_QUALITIES = frozenset(get_args(TagQuality))
_END_REASONS = frozenset(get_args(EndReason))
_OVERFLOW_REASONS = frozenset(get_args(OverflowReason))


def _text_or_none(value: Any) -> bool:
    return value is None or type(value) is str


_TAG_NAMES = ("tag", "value", "unit", "quality", "status")
_TAG_DEFAULTS = (None,) * 5
_TAG_KEYS = frozenset(_TAG_NAMES)


def _tag_sampled(payload: dict[str, Any]) -> bool:
    if len(payload) == 5 and "unit" in payload:
        tag = payload["tag"]  # a KeyError of a missing required field means "not sure"
        value = payload["value"]
        unit = payload["unit"]
        quality = payload["quality"]
        status = payload["status"]
    else:
        fields = loose_fields(payload, _TAG_NAMES, _TAG_DEFAULTS, _TAG_KEYS)
        if fields is None:
            return False
        tag, value, unit, quality, status = fields
    kind = type(value)
    return (
        type(tag) is str
        and 1 <= len(tag) <= 128
        and (kind is str or kind is int or kind is bool or (kind is float and plain_float(value)))
        and (unit is None or type(unit) is str)
        and quality in _QUALITIES
        and type(status) is str
    )


_COUNTED_NAMES = (
    "good",
    "scrap",
    "total",
    "product_id",
    "order_id",
    "counter_reset",
    "interval_start",
)
_COUNTED_DEFAULTS = (None,) * 5 + (False, None)
_COUNTED_KEYS = frozenset(_COUNTED_NAMES)


def _production_counted(payload: dict[str, Any]) -> bool:
    if len(payload) == 7:
        good = payload["good"]
        scrap = payload["scrap"]
        total = payload["total"]
        product_id = payload["product_id"]
        order_id = payload["order_id"]
        counter_reset = payload["counter_reset"]
        interval_start = payload["interval_start"]
    else:
        fields = loose_fields(payload, _COUNTED_NAMES, _COUNTED_DEFAULTS, _COUNTED_KEYS)
        if fields is None:
            return False
        good, scrap, total, product_id, order_id, counter_reset, interval_start = fields
    return (
        type(good) is int
        and type(scrap) is int
        and type(total) is int
        and good >= 0
        and scrap >= 0
        and total == good + scrap
        and (product_id is None or type(product_id) is str)
        and (order_id is None or type(order_id) is str)
        and type(counter_reset) is bool
        and (interval_start is None or timestamp(interval_start) is not None)
    )


_STATE_NAMES = ("state", "previous_state", "raw_value", "reason_code")
_STATE_DEFAULTS = (None,) * 4
_STATE_KEYS = frozenset(_STATE_NAMES)


def _state_changed(payload: dict[str, Any]) -> bool:
    fields = loose_fields(payload, _STATE_NAMES, _STATE_DEFAULTS, _STATE_KEYS)
    if fields is None:
        return False
    state, previous, raw_value, reason_code = fields
    kind = type(raw_value)
    return (
        state in _STATES
        and (previous is None or previous in _STATES)
        # a bool would be turned into a float by pydantic: left to the slow path
        and (
            raw_value is None
            or kind is int
            or kind is str
            or (kind is float and plain_float(raw_value))
        )
        and (reason_code is None or (type(reason_code) is int and reason_code >= 0))
    )


_STARTED_NAMES = ("order_id", "product_id", "ideal_cycle_time_s")
_STARTED_DEFAULTS = (None,) * 3
_STARTED_KEYS = frozenset(_STARTED_NAMES)


def _production_started(payload: dict[str, Any]) -> bool:
    fields = loose_fields(payload, _STARTED_NAMES, _STARTED_DEFAULTS, _STARTED_KEYS)
    if fields is None:
        return False
    order_id, product_id, ideal = fields
    kind = type(ideal)
    return (
        _text_or_none(order_id)
        and _text_or_none(product_id)
        # a bool or a numeric string would be converted by pydantic: slow path
        and (
            ideal is None
            or (kind is int and ideal > 0)
            or (kind is float and ideal > 0 and plain_float(ideal))
        )
    )


_ENDED_NAMES = ("order_id", "product_id", "reason")
_ENDED_DEFAULTS = (None,) * 3
_ENDED_KEYS = frozenset(_ENDED_NAMES)


def _production_ended(payload: dict[str, Any]) -> bool:
    fields = loose_fields(payload, _ENDED_NAMES, _ENDED_DEFAULTS, _ENDED_KEYS)
    if fields is None:
        return False
    order_id, product_id, reason = fields
    return _text_or_none(order_id) and _text_or_none(product_id) and reason in _END_REASONS


_OVERFLOW_NAMES = (
    "dropped_events",
    "first_seq",
    "last_seq",
    "first_event_time",
    "last_event_time",
    "reason",
)
_OVERFLOW_DEFAULTS = (None,) * 6
_OVERFLOW_KEYS = frozenset(_OVERFLOW_NAMES)


def _buffer_overflowed(payload: dict[str, Any]) -> bool:
    fields = loose_fields(payload, _OVERFLOW_NAMES, _OVERFLOW_DEFAULTS, _OVERFLOW_KEYS)
    if fields is None:
        return False
    dropped, first_seq, last_seq, first_time, last_time, reason = fields
    return (
        type(dropped) is int
        and dropped >= 1
        and type(first_seq) is int
        and first_seq >= 0
        and type(last_seq) is int
        and last_seq >= 0
        and timestamp(first_time) is not None
        and timestamp(last_time) is not None
        and reason in _OVERFLOW_REASONS
    )


PAYLOAD_CHECKS: dict[str, Callable[[dict[str, Any]], bool]] = {
    # keys: lineside_protocol.EVENT_TYPES (a test keeps them equal)
    "equipment.state_changed": _state_changed,
    "production.counted": _production_counted,
    "production.started": _production_started,
    "production.ended": _production_ended,
    "tag.sampled": _tag_sampled,
    "buffer.overflowed": _buffer_overflowed,
}
