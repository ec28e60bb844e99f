"""``EventDraft``: a domain event as the deriver produces it, before the shell stamps it.

The shell adds event_id, seq and the agent id, then serialises with the wire models of
``lineside_protocol``. Payload keys match those models' fields.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple


class EventType(StrEnum):
    STATE_CHANGED = "equipment.state_changed"
    PRODUCTION_COUNTED = "production.counted"
    PRODUCTION_STARTED = "production.started"
    PRODUCTION_ENDED = "production.ended"
    TAG_SAMPLED = "tag.sampled"
    BUFFER_OVERFLOWED = "buffer.overflowed"  # made by the buffer's shell, not a deriver


class EventDraft(NamedTuple):
    """A derived event: what happened on ``equipment`` at ``event_time``.

    A NamedTuple for speed (one per event on the hot path).

    ``received_time`` is when the agent received the newest sample behind it;
    ``correlation_id`` is the order id the event belongs to (None without an order).
    """

    type: str
    equipment: str
    event_time: datetime
    received_time: datetime
    payload: dict[str, Any]
    correlation_id: str | None
