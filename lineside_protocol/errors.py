"""The one exception of the wire contract and its machine-readable reasons."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why a message was refused; the collector stores dead letters under this code."""

    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    NOT_JSON = "not_json"
    NON_FINITE_NUMBER = "non_finite_number"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    INVALID_BATCH = "invalid_batch"
    INVALID_EVENT = "invalid_event"
    MIXED_EQUIPMENT = "mixed_equipment"
    AGENT_MISMATCH = "agent_mismatch"
    INVALID_ACK = "invalid_ack"
    BAD_TOPIC = "bad_topic"


class ProtocolError(ValueError):
    """A message, topic or identifier does not follow the Lineside wire contract.

    ``reason`` is a short code from :class:`RejectReason` for dead letters and metrics;
    ``str(error)`` is the message for a human, naming the field and the fix.
    """

    def __init__(self, reason: RejectReason, message: str) -> None:
        self.reason = RejectReason(reason)
        self.message = message
        super().__init__(message)

    def __reduce__(self) -> tuple[type[ProtocolError], tuple[RejectReason, str]]:
        # keeps the reason when the error crosses a process boundary (pickle)
        return (type(self), (self.reason, self.message))
