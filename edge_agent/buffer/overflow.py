"""Dropped events -> a ``buffer.overflowed`` draft, so the collector learns what was lost.

The pipeline stamps the draft like any other (it gets its own sequence number in the
equipment's stream) and submits it to the buffer, where it waits for the broker like
the events that survived.
"""

from __future__ import annotations

from datetime import datetime

from edge_agent.buffer.records import DroppedRange
from edge_agent.derive import EventDraft, EventType


def overflow_draft(dropped: DroppedRange, received_time: datetime) -> EventDraft:
    """A ``buffer.overflowed`` draft for ``dropped``; its event time is ``received_time``.

    ``received_time`` is when the agent noticed the drop (timezone-aware UTC): the
    dropped events' own times travel in the payload.
    """
    return EventDraft(
        type=EventType.BUFFER_OVERFLOWED,
        equipment=dropped.equipment,
        event_time=received_time,
        received_time=received_time,
        payload={
            "dropped_events": dropped.dropped_events,
            "first_seq": dropped.first_seq,
            "last_seq": dropped.last_seq,
            "first_event_time": dropped.first_event_time,
            "last_event_time": dropped.last_event_time,
            "reason": dropped.reason,
        },
        correlation_id=None,
    )
