"""One MQTT message -> an :class:`AcceptedBatch` or a :class:`DeadLetter`.

The wire contract is ``lineside_protocol.decode_batch``: this validator accepts exactly
what it accepts and refuses the rest with the same reason and message, plus two rules
of the collector's own (reason ``bad_topic`` and ``invalid_event``; docs/protocol.md,
"Errors and dead letters"): the topic must be the events topic of the batch's
equipment, and every ``event_time`` and ``received_time`` must lie between 2000-01-01
and ``max_future_s`` after the message arrived.

Speed: decode_batch (pydantic) manages ~16k events/s; the collector needs 50k end to
end. So the payload is parsed once with orjson and checked by hand (``_fast``); only a
message the fast path is not sure about goes to decode_batch (``_slow``), which then
decides. Rules are checked in this order: the contract, the topic, the time bounds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from operator import attrgetter

import orjson

from collector.records import AcceptedBatch, AckTarget, DeadLetter, Equipment, EventRow
from lineside_protocol import MAX_BATCH_BYTES, RejectReason, parse_topic

from ._fast import CheckedBatch, check_batch
from ._slow import Refusal, ack_target, decide_slowly, lenient_document

__all__ = ["EARLIEST_EVENT_TIME", "validate_message"]

EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
"""No event_time or received_time before this is accepted (a PLC clock never set)."""

_UNREAD = object()
_NO_DOCUMENT_REASONS = frozenset(
    (RejectReason.TOO_LARGE.value, RejectReason.INVALID_UTF8.value, RejectReason.NOT_JSON.value)
)


def validate_message(
    topic: str,
    payload: bytes,
    received_at: datetime,
    *,
    max_future_s: float = 600.0,
    max_bytes: int = MAX_BATCH_BYTES,
) -> AcceptedBatch | DeadLetter:
    """Check one message from an events topic; never raises for any topic or payload.

    ``received_at`` is when the collector received the message (naive means UTC).
    Event times later than ``max_future_s`` after it are refused (``math.inf``: no
    limit); ``max_bytes`` is decode_batch's size limit. Raises ``ValueError`` only for a
    negative or NaN ``max_future_s``, a configuration mistake.
    """
    if math.isnan(max_future_s) or max_future_s < 0:
        raise ValueError(f"max_future_s must be >= 0 seconds, got {max_future_s}")
    data = payload if type(payload) is bytes else bytes(payload)
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    document: object = _UNREAD
    checked: CheckedBatch | Refusal | None = None
    if len(data) <= max_bytes:
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # decode_batch names the problem (or reads what orjson cannot)
        else:
            checked = check_batch(document)
    if checked is None:
        checked = decide_slowly(data, max_bytes)
    if isinstance(checked, Refusal):
        if document is _UNREAD and checked.reason not in _NO_DOCUMENT_REASONS:
            document = lenient_document(data)
        ack = ack_target(document, topic)
        return DeadLetter(topic, data, checked.reason, checked.detail, received_at, ack)

    problem = _topic_problem(topic, checked.equipment)
    reason = RejectReason.BAD_TOPIC
    if problem is None:
        problem = _time_problem(checked.rows, received_at, max_future_s)
        reason = RejectReason.INVALID_EVENT
    if problem is not None:
        ack = AckTarget(
            checked.equipment.enterprise, checked.equipment.site, checked.agent_id, checked.batch_id
        )
        return DeadLetter(topic, data, reason.value, problem, received_at, ack)
    return AcceptedBatch(
        topic,
        checked.batch_id,
        checked.agent_id,
        checked.equipment,
        checked.sent_at,
        checked.rows,
        len(data),
    )


# ---- the topic ----------------------------------------------------------------------

_TOPICS: dict[str, Equipment | str] = {}
"""Topic -> its equipment, or why it is no events topic. A collector sees the same few
hundred topics over and over; parse_topic builds a pydantic model each time."""
_TOPICS_MAX = 4096


def _topic_problem(topic: str, equipment: Equipment) -> str | None:
    """Why ``topic`` is not the events topic of ``equipment``, or None when it is."""
    try:
        known = _TOPICS.get(topic)
    except TypeError:  # not a string at all
        known = None
    if known is None:
        known = _topic_equipment(topic)
        if type(topic) is str:
            if len(_TOPICS) >= _TOPICS_MAX:
                _TOPICS.clear()
            _TOPICS[topic] = known
    if known == equipment:
        return None
    expected = f"lineside/v1/{'/'.join(equipment)}/events"
    if isinstance(known, str):
        return f"{known}; batches of equipment {'/'.join(equipment)} belong on {expected!r}"
    return (
        f"topic {topic!r} names equipment {'/'.join(known)} but the batch's equipment is "
        f"{'/'.join(equipment)}; publish each batch to its equipment's topic {expected!r}"
    )


def _topic_equipment(topic: str) -> Equipment | str:
    try:
        parsed = parse_topic(topic)
    except Exception as error:  # ProtocolError, or anything for a non-string topic
        return str(error) if type(topic) is str else f"topic {topic!r} is not a string"
    if parsed.path is None:
        return f"topic {topic!r} is an agent {parsed.kind} topic, not an events topic"
    return Equipment(*parsed.path.levels())


# ---- the time bounds --------------------------------------------------------------

_event_time = attrgetter("event_time")
_received_time = attrgetter("received_time")
_LATEST_POSSIBLE = datetime.max.replace(tzinfo=UTC)


def _time_problem(rows: list[EventRow], received_at: datetime, max_future_s: float) -> str | None:
    """The first event time outside [2000-01-01, received_at + max_future_s], if any."""
    try:
        latest = received_at + timedelta(seconds=max_future_s)
    except OverflowError:  # math.inf, or a received_at close to year 9999
        latest = _LATEST_POSSIBLE
    earliest = EARLIEST_EVENT_TIME
    # four C-level passes; the loop below runs only for a batch that breaks a bound
    if (
        min(map(_event_time, rows)) >= earliest
        and min(map(_received_time, rows)) >= earliest
        and max(map(_event_time, rows)) <= latest
        and max(map(_received_time, rows)) <= latest
    ):
        return None
    for index, row in enumerate(rows):
        for field, value in (("event_time", row.event_time), ("received_time", row.received_time)):
            if value < earliest:
                return (
                    f"events[{index}].{field}: {_wire(value)} is before {_wire(earliest)}, the "
                    "earliest time the collector accepts; check the clock of the PLC and the agent"
                )
            if value > latest:
                return (
                    f"events[{index}].{field}: {_wire(value)} is more than {max_future_s:g} s "
                    f"after the collector received the batch at {_wire(received_at)} (latest "
                    f"accepted: {_wire(latest)}); check the clock of the PLC and the agent"
                )
    return None


def _wire(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
