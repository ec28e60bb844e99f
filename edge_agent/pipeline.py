"""Samples -> derivers -> stamped events -> a sink (the in-process data path).

Sources call ``EventPipeline.on_items`` with what they read; each equipment's deriver
turns its samples into drafts, the stamper numbers them, and the sink receives the
events (in memory for now; the SQLite buffer and MQTT forwarder come next).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from edge_agent.config.models import AgentConfig
from edge_agent.config.roles import equipment_roles
from edge_agent.derive import Deriver
from edge_agent.samples import ConnectionChange, Sample
from edge_agent.sequences import SequenceStore
from edge_agent.stamp import Stamper
from lineside_protocol import Event

Sink = Callable[[list[Event]], None]


class EventPipeline:
    def __init__(self, config: AgentConfig, sequences: SequenceStore, sink: Sink) -> None:
        self._sink = sink
        self._stamper = Stamper(config.agent.id, config.agent.location, sequences)
        self.derivers: dict[str, Deriver] = {}
        self._equipment_of_tag: dict[str, str] = {}
        self._equipment_of_connection: dict[str, list[str]] = {}
        for roles in equipment_roles(config):
            self.derivers[roles.equipment] = Deriver(roles)
            for tag in roles.tags:
                self._equipment_of_tag[tag] = roles.equipment
            for connection in roles.connections:
                self._equipment_of_connection.setdefault(connection, []).append(roles.equipment)
        self.unknown_tags = 0

    def on_items(self, items: Sequence[Sample | ConnectionChange]) -> list[Event]:
        """Derive, stamp and deliver; returns the events (also given to the sink)."""
        samples: dict[str, list[Sample]] = {}
        events: list[Event] = []
        for item in items:
            if isinstance(item, ConnectionChange):
                events += self._flush(samples)  # keep time order around connection changes
                for equipment in self._equipment_of_connection.get(item.connection, []):
                    drafts = self.derivers[equipment].on_connection(item)
                    events += self._stamper.stamp(equipment, drafts)
                continue
            equipment = self._equipment_of_tag.get(item.tag)
            if equipment is None:
                self.unknown_tags += 1
                continue
            samples.setdefault(equipment, []).append(item)
        events += self._flush(samples)
        if events:
            self._sink(events)
        return events

    def _flush(self, samples: dict[str, list[Sample]]) -> list[Event]:
        events: list[Event] = []
        for equipment, batch in samples.items():
            events += self._stamper.stamp(equipment, self.derivers[equipment].on_samples(batch))
        samples.clear()
        return events

    def snapshots(self) -> dict[str, dict[str, Any]]:
        """Deriver state per equipment (JSON-able), for persisting across restarts."""
        return {name: deriver.snapshot() for name, deriver in self.derivers.items()}

    def restore(self, snapshots: dict[str, dict[str, Any]]) -> None:
        for name, snapshot in snapshots.items():
            if name in self.derivers:
                self.derivers[name].restore(snapshot)


class MemorySink:
    """Keeps every event in memory (tests, ``edge-agent read``); thread-safe."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, events: list[Event]) -> None:
        with self._lock:
            self.events.extend(events)

    def of_type(self, event_type: str, equipment: str | None = None) -> list[Event]:
        with self._lock:
            return [
                e
                for e in self.events
                if e.type == event_type
                and (equipment is None or e.equipment.equipment == equipment)
            ]
