"""Drafts -> wire events: event ids, sequence numbers, agent id and equipment path."""

from __future__ import annotations

from edge_agent.config.models import Location
from edge_agent.derive import EventDraft, EventType
from edge_agent.sequences import SequenceStore
from lineside_protocol import EVENT_ADAPTER, EquipmentPath, Event, new_event_id


class Stamper:
    """Turns one equipment's drafts into numbered, identified protocol events."""

    def __init__(self, agent_id: str, location: Location, sequences: SequenceStore) -> None:
        self._agent_id = agent_id
        self._location = location
        self._sequences = sequences
        self._paths: dict[str, EquipmentPath] = {}

    def path(self, equipment: str) -> EquipmentPath:
        path = self._paths.get(equipment)
        if path is None:
            loc = self._location
            path = EquipmentPath(
                enterprise=loc.enterprise,
                site=loc.site,
                area=loc.area,
                line=loc.line,
                equipment=equipment,
            )
            self._paths[equipment] = path
        return path

    def stamp(self, equipment: str, drafts: list[EventDraft]) -> list[Event]:
        """Number ``drafts`` (all of ``equipment``) in order; causation links ended->started."""
        if not drafts:
            return []
        numbers = self._sequences.allocate(equipment, len(drafts))
        path = self.path(equipment)
        events: list[Event] = []
        previous_id: str | None = None
        previous_type: str | None = None
        for seq, draft in zip(numbers, drafts, strict=True):
            event_id = new_event_id()
            causation = (
                previous_id
                if draft.type == EventType.PRODUCTION_STARTED
                and previous_type == EventType.PRODUCTION_ENDED
                else None
            )
            events.append(
                EVENT_ADAPTER.validate_python(
                    {
                        "event_id": event_id,
                        "type": draft.type,
                        "agent_id": self._agent_id,
                        "equipment": path,
                        "seq": seq,
                        "event_time": draft.event_time,
                        "received_time": draft.received_time,
                        "correlation_id": draft.correlation_id,
                        "causation_id": causation,
                        "payload": draft.payload,
                    }
                )
            )
            previous_id, previous_type = event_id, draft.type
        return events
