"""What ingest hands to the store: validated batches and dead letters (plain data).

``collector.ingest.validate`` turns one MQTT message into either an
:class:`AcceptedBatch` or a :class:`DeadLetter`; ``collector.store`` writes both in one
transaction per group of messages. Nothing here does I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple


class Equipment(NamedTuple):
    """An ISA-95 equipment path, as in the topic and the batch's ``equipment`` object."""

    enterprise: str
    site: str
    area: str
    line: str
    equipment: str


class EventRow(NamedTuple):
    """One accepted event, every field checked against the wire contract (schema 1)."""

    event_id: str
    """UUIDv7, lower-case hyphenated form."""
    type: str
    """One of ``lineside_protocol.EVENT_TYPES``."""
    seq: int
    event_time: datetime
    """Timezone-aware UTC, millisecond precision (finer digits dropped)."""
    received_time: datetime
    correlation_id: str | None
    causation_id: str | None
    historical: bool
    payload: dict[str, Any]
    """The payload as parsed JSON; already validated for ``type`` (unknown keys kept)."""


class AcceptedBatch(NamedTuple):
    """One valid batch: the events of one equipment from one agent."""

    topic: str
    batch_id: str
    agent_id: str
    equipment: Equipment
    sent_at: datetime
    events: list[EventRow]
    payload_bytes: int
    """Size of the MQTT payload (for metrics)."""


class AckTarget(NamedTuple):
    """Where a ``rejected`` ack goes, when the refused message named its batch and agent."""

    enterprise: str
    site: str
    agent_id: str
    batch_id: str


class DeadLetter(NamedTuple):
    """A refused message, kept with the reason (``lineside_protocol.RejectReason`` value)."""

    topic: str
    payload: bytes
    """The raw payload as received (the store keeps at most its configured cap)."""
    reason: str
    detail: str
    """Names the field and the problem, as the ``detail`` of a rejected ack."""
    received_at: datetime
    ack: AckTarget | None
    """None when the message did not name a readable batch id and agent (no ack then)."""
