"""The validator's slow path: ``decode_batch`` decides, and where a dead letter's ack goes.

Used when the fast path is not sure: ``decode_batch`` either refuses (its reason and
message are the dead letter's) or accepts (rows come from its models, so the values
are exactly pydantic's). ``decode_batch`` should only raise ``ProtocolError``, but it
can raise other errors on a few inputs (an integer of more than 4300 digits, a
timestamp whose UTC value falls outside years 1-9999); those become refusals here too.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from collector.records import AckTarget, Equipment, EventRow
from lineside_protocol import ProtocolError, RejectReason, decode_batch, parse_topic

from ._fast import CheckedBatch
from ._shapes import agent_id_shape, level_shape, uuid7_shape


class Refusal(NamedTuple):
    """Why a message is refused: a ``RejectReason`` value and the message for people."""

    reason: str
    detail: str


def decide_slowly(data: bytes, max_bytes: int) -> CheckedBatch | Refusal:
    """``decode_batch``'s verdict on ``data``: the checked batch, or its refusal."""
    try:
        batch = decode_batch(data, max_bytes=max_bytes)
    except ProtocolError as error:
        return Refusal(error.reason.value, error.message)
    except Exception as error:
        return _refusal_for_crash(data, error)
    payloads = _raw_payloads(data, len(batch.events))
    rows = [
        EventRow(
            event.event_id,
            event.type,
            event.seq,
            event.event_time,
            event.received_time,
            event.correlation_id,
            event.causation_id,
            event.historical,
            payloads[index] if payloads else event.payload.model_dump(mode="json"),
        )
        for index, event in enumerate(batch.events)
    ]
    equipment = Equipment(*batch.equipment.levels())
    return CheckedBatch(batch.batch_id, batch.agent_id, equipment, batch.sent_at, rows)


def _raw_payloads(data: bytes, count: int) -> list[dict[str, Any]] | None:
    """The payload objects as parsed JSON (unknown keys kept), as the fast path gives them."""
    try:
        events = json.loads(data.decode("utf-8"))["events"]
        payloads = [event["payload"] for event in events]
    except Exception:  # decode_batch read it, so this is not expected; fall back to models
        return None
    return payloads if len(payloads) == count else None


def _refusal_for_crash(data: bytes, error: Exception) -> Refusal:
    if isinstance(error, RecursionError):
        return Refusal(
            RejectReason.NOT_JSON.value,
            "batch is not JSON this receiver can read: nested too deep",
        )
    try:
        json.loads(data.decode("utf-8"))
    except ValueError as parse_error:
        if not isinstance(parse_error, json.JSONDecodeError):
            # Python refuses integers of more than 4300 digits (int_max_str_digits)
            return Refusal(
                RejectReason.NON_FINITE_NUMBER.value,
                f"JSON contains a number this receiver cannot read ({parse_error}); send "
                "numbers that fit a double",
            )
    except Exception:
        pass
    return Refusal(
        RejectReason.INVALID_BATCH.value,
        f"batch could not be validated ({type(error).__name__}: {error}); check its "
        "timestamps and numbers against docs/protocol.md",
    )


def lenient_document(data: bytes) -> Any:
    """The payload parsed as leniently as Python's json allows (NaN, 1e400), else None.

    A batch refused for a non-finite number still names its batch and agent, so it can
    be acked as rejected instead of being resent forever. Integers are read as floats:
    json refuses integers of more than 4300 digits, float() makes them inf.
    """
    try:
        return json.loads(data.decode("utf-8"), parse_int=float)
    except Exception:
        return None


def ack_target(document: Any, topic: str) -> AckTarget | None:
    """Where the ``rejected`` ack of a refused message goes, if it named batch and agent.

    enterprise and site come from the batch's equipment when that names them validly,
    else from the topic; no ack without a valid UUIDv7 batch id and agent id.
    """
    if type(document) is not dict:
        return None
    batch_id = document.get("batch_id")
    agent_id = document.get("agent_id")
    if not (
        type(batch_id) is str
        and uuid7_shape(batch_id)
        and type(agent_id) is str
        and agent_id_shape(agent_id)
    ):
        return None
    place = _place_of_equipment(document.get("equipment")) or _place_of_topic(topic)
    if place is None:
        return None
    return AckTarget(place[0], place[1], agent_id, batch_id.lower())


def _place_of_equipment(equipment: Any) -> tuple[str, str] | None:
    if type(equipment) is not dict:
        return None
    enterprise = equipment.get("enterprise")
    site = equipment.get("site")
    if type(enterprise) is str and type(site) is str and level_shape(enterprise):
        return (enterprise, site) if level_shape(site) else None
    return None


def _place_of_topic(topic: str) -> tuple[str, str] | None:
    try:
        parsed = parse_topic(topic)
    except Exception:  # ProtocolError for a bad topic; anything for a non-string
        return None
    if level_shape(parsed.enterprise) and level_shape(parsed.site):
        return parsed.enterprise, parsed.site
    return None
