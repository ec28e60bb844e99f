"""The batch envelope an agent publishes, the ack the collector answers with, and codecs.

An agent publishes the events of ONE equipment as an :class:`EventBatch` to that
equipment's events topic. The collector answers on the agent's acks topic with a
:class:`BatchAck` once the batch is committed (or dead-lettered); only then may the
agent delete the batch from its buffer.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal, NoReturn

from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from .errors import ProtocolError, RejectReason
from .events import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    SCHEMA_VERSION,
    Event,
    SchemaVersion,
    Timestamp,
    WireModel,
)
from .ids import Uuid7Str
from .topics import AgentId, EquipmentPath

MAX_BATCH_BYTES = 1_048_576
"""Default largest encoded batch a receiver accepts (1 MiB)."""
MAX_BATCH_EVENTS = 10_000
MAX_ACK_BYTES = 65_536


def _version_is_required_on_the_wire(schema: dict[str, Any]) -> None:
    required = schema.setdefault("required", [])
    if "schema_version" not in required:
        required.insert(0, "schema_version")


class EventBatch(WireModel):
    """Events of one equipment from one agent, published as one MQTT message."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_version_is_required_on_the_wire)

    schema_version: SchemaVersion = SCHEMA_VERSION
    batch_id: Uuid7Str
    agent_id: AgentId
    equipment: EquipmentPath
    sent_at: Timestamp
    events: Annotated[list[Event], Field(min_length=1, max_length=MAX_BATCH_EVENTS)]

    @model_validator(mode="after")
    def _events_belong_to_the_batch(self) -> EventBatch:
        for index, event in enumerate(self.events):
            if event.equipment != self.equipment:
                raise PydanticCustomError(
                    "mixed_equipment",
                    "events[{index}].equipment {found} differs from the batch equipment "
                    "{expected}; publish one batch per equipment",
                    {
                        "index": index,
                        "found": str(event.equipment),
                        "expected": str(self.equipment),
                    },
                )
            if event.agent_id != self.agent_id:
                raise PydanticCustomError(
                    "agent_mismatch",
                    "events[{index}].agent_id '{found}' differs from the batch agent_id "
                    "'{expected}'; publish one batch per agent and equipment",
                    {"index": index, "found": event.agent_id, "expected": self.agent_id},
                )
        return self


class BatchAck(WireModel):
    """The collector's answer to one batch, published to the agent's acks topic."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_version_is_required_on_the_wire)

    schema_version: SchemaVersion = SCHEMA_VERSION
    batch_id: Uuid7Str
    agent_id: AgentId
    committed_at: Timestamp
    status: Literal["committed", "rejected"]
    detail: str | None = None


# ---- codecs -----------------------------------------------------------------------


def encode_batch(batch: EventBatch) -> bytes:
    """Compact UTF-8 JSON for one batch."""
    return batch.model_dump_json().encode("utf-8")


def encode_ack(ack: BatchAck) -> bytes:
    """Compact UTF-8 JSON for one ack."""
    return ack.model_dump_json().encode("utf-8")


def decode_batch(data: bytes, *, max_bytes: int = MAX_BATCH_BYTES) -> EventBatch:
    """Parse and validate one batch, or raise ``ProtocolError`` with a reason code."""
    document = _load_json(data, max_bytes, what="batch")
    if not isinstance(document, dict):
        _reject(RejectReason.INVALID_BATCH, f"a batch is a JSON object, got {_json_kind(document)}")
    _check_version_field(document, "", RejectReason.INVALID_BATCH)
    events = document.get("events")
    if isinstance(events, list):
        for index, event in enumerate(events):
            if isinstance(event, dict):
                _check_event_header(event, f"events[{index}].")
    try:
        return EventBatch.model_validate(document)
    except ValidationError as error:
        _reject(*_classify(error, default=RejectReason.INVALID_BATCH))


def decode_event(data: bytes | dict[str, Any]) -> Event:
    """Parse and validate one event (JSON bytes or an already parsed object).

    Events travel inside batches; this is for tools, tests and documentation examples.
    """
    document = _load_json(data, MAX_BATCH_BYTES, what="event") if isinstance(data, bytes) else data
    if not isinstance(document, dict):
        _reject(
            RejectReason.INVALID_EVENT, f"an event is a JSON object, got {_json_kind(document)}"
        )
    _check_event_header(document, "")
    try:
        return EVENT_ADAPTER.validate_python(document)
    except ValidationError as error:
        _reject(*_classify(error, default=RejectReason.INVALID_EVENT))


def decode_ack(data: bytes, *, max_bytes: int = MAX_ACK_BYTES) -> BatchAck:
    """Parse and validate one ack, or raise ``ProtocolError`` with a reason code."""
    document = _load_json(data, max_bytes, what="ack")
    if not isinstance(document, dict):
        _reject(RejectReason.INVALID_ACK, f"an ack is a JSON object, got {_json_kind(document)}")
    _check_version_field(document, "", RejectReason.INVALID_ACK)
    try:
        return BatchAck.model_validate(document)
    except ValidationError as error:
        _reject(*_classify(error, default=RejectReason.INVALID_ACK))


# ---- helpers ----------------------------------------------------------------------


def _reject(reason: RejectReason, message: str) -> NoReturn:
    raise ProtocolError(reason, message) from None


def _reject_non_finite(literal: str) -> NoReturn:
    _reject(
        RejectReason.NON_FINITE_NUMBER,
        f"JSON contains {literal}, which is not a finite number; send finite numbers only "
        "(NaN and Infinity are not JSON)",
    )


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # e.g. 1e400, which json.loads would turn into inf
        _reject_non_finite(literal)
    return value


def _load_json(data: bytes, max_bytes: int, *, what: str) -> Any:
    if len(data) > max_bytes:
        _reject(
            RejectReason.TOO_LARGE,
            f"{what} is {len(data)} bytes, more than the limit of {max_bytes} bytes; "
            "send smaller batches",
        )
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        _reject(
            RejectReason.INVALID_UTF8,
            f"{what} is not valid UTF-8 (byte {error.start}: {error.reason})",
        )
    try:
        return json.loads(text, parse_constant=_reject_non_finite, parse_float=_finite_float)
    except json.JSONDecodeError as error:
        _reject(RejectReason.NOT_JSON, f"{what} is not JSON: {error}")
    except RecursionError:
        _reject(
            RejectReason.NOT_JSON, f"{what} is not JSON this receiver can read: nested too deep"
        )


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _check_version_field(document: dict[str, Any], where: str, missing: RejectReason) -> None:
    # checked before anything else: a newer message is refused for its version, not for
    # whichever of its new fields happens to fail first
    if "schema_version" not in document:
        _reject(missing, f"{where}schema_version: required field is missing")
    version = document["schema_version"]
    if isinstance(version, int) and not isinstance(version, bool) and version != SCHEMA_VERSION:
        _reject(
            RejectReason.UNSUPPORTED_SCHEMA_VERSION,
            f"{where}schema_version {version} is not supported by this receiver (it "
            f"understands {SCHEMA_VERSION}); upgrade the receiver or publish schema_version "
            f"{SCHEMA_VERSION}",
        )


def _check_event_header(event: dict[str, Any], where: str) -> None:
    _check_version_field(event, where, RejectReason.INVALID_EVENT)
    if "type" not in event:
        _reject(RejectReason.INVALID_EVENT, f"{where}type: required field is missing")
    if not isinstance(event["type"], str):
        _reject(
            RejectReason.INVALID_EVENT,
            f"{where}type: must be a string, got {json.dumps(event['type'])}",
        )
    if event["type"] not in EVENT_TYPES:
        _reject(
            RejectReason.UNKNOWN_EVENT_TYPE,
            f"{where}type {event['type']!r} is not a known event type (known: "
            f"{', '.join(EVENT_TYPES)}); a newer sender needs a newer receiver",
        )


_REASON_BY_ERROR_TYPE = {
    "mixed_equipment": RejectReason.MIXED_EQUIPMENT,
    "agent_mismatch": RejectReason.AGENT_MISMATCH,
}


def _classify(error: ValidationError, *, default: RejectReason) -> tuple[RejectReason, str]:
    """The reason code and a readable message for a pydantic validation error."""
    details = error.errors(include_url=False)
    special = [_REASON_BY_ERROR_TYPE.get(detail["type"]) for detail in details]
    reason = next((found for found in special if found is not None), default)
    if reason is RejectReason.INVALID_BATCH and _is_inside_an_event(details[0]):
        reason = RejectReason.INVALID_EVENT
    shown = [_render(detail) for detail in details[:3]]
    if len(details) > 3:
        shown.append(f"(+{len(details) - 3} more)")
    return reason, "; ".join(shown)


def _is_inside_an_event(detail: ErrorDetails) -> bool:
    loc = detail["loc"]
    return len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int)


def _render(detail: ErrorDetails) -> str:
    path = ""
    for part in detail["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in EVENT_TYPES:
            continue  # the union tag pydantic adds to the location; the reader knows it
        else:
            path += f".{part}" if path else str(part)
    message = _MESSAGES.get(detail["type"], detail["msg"].removeprefix("Value error, "))
    if detail["type"] not in _MESSAGE_NAMES_INPUT and not isinstance(detail["input"], dict | list):
        message += f" (got {json.dumps(detail['input'], default=str)})"
    return f"{path}: {message}" if path else message


_MESSAGES = {
    "missing": "required field is missing",
    "timezone_aware": "timestamp has no UTC offset; add 'Z' or '+hh:mm'",
}
# error types whose message already shows the offending value (or has none to show)
_MESSAGE_NAMES_INPUT = {
    "missing",
    "value_error",
    "mixed_equipment",
    "agent_mismatch",
    "count_mismatch",
    "unsupported_schema_version",
}
