"""Samples -> derivers -> stamped events -> a sink (the in-process data path).

Sources call ``EventPipeline.on_items`` with what they read; each equipment's deriver
turns its samples into drafts, the stamper numbers them, and the sink receives the
events (in memory for now; the SQLite buffer and MQTT forwarder come next).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

from edge_agent.config.models import AgentConfig
from edge_agent.config.roles import equipment_roles
from edge_agent.derive import Deriver, EventDraft
from edge_agent.samples import ConnectionChange, Sample
from edge_agent.sequences import SequenceCounter
from edge_agent.stamp import Stamper, WireEvent
from lineside_protocol import EVENT_ADAPTER, Event

Sink = Callable[[list[WireEvent]], None]


class EventPipeline:
    def __init__(self, config: AgentConfig, sequences: SequenceCounter, sink: Sink) -> None:
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

    def on_items(self, items: Sequence[Sample | ConnectionChange]) -> list[WireEvent]:
        """Derive, stamp and deliver; returns the events (also given to the sink).

        Drafts of the whole call are numbered with one sequence allocation.
        """
        drafts: dict[str, list[EventDraft]] = {}
        samples: dict[str, list[Sample]] = {}
        for item in items:
            if isinstance(item, ConnectionChange):
                self._derive(samples, drafts)  # keep time order around connection changes
                for equipment in self._equipment_of_connection.get(item.connection, []):
                    drafts.setdefault(equipment, []).extend(
                        self.derivers[equipment].on_connection(item)
                    )
                continue
            equipment = self._equipment_of_tag.get(item.tag)
            if equipment is None:
                self.unknown_tags += 1
                continue
            samples.setdefault(equipment, []).append(item)
        self._derive(samples, drafts)
        events = self._stamper.stamp_many(drafts)
        if events:
            self._sink(events)
        return events

    def on_drafts(self, drafts: dict[str, list[EventDraft]]) -> list[WireEvent]:
        """Stamp and deliver drafts made outside the derivers (e.g. buffer.overflowed)."""
        events = self._stamper.stamp_many(drafts)
        if events:
            self._sink(events)
        return events

    def _derive(
        self, samples: dict[str, list[Sample]], drafts: dict[str, list[EventDraft]]
    ) -> None:
        for equipment, batch in samples.items():
            drafts.setdefault(equipment, []).extend(self.derivers[equipment].on_samples(batch))
        samples.clear()

    def snapshots(self) -> dict[str, dict[str, Any]]:
        """Deriver state per equipment (JSON-able), for persisting across restarts."""
        return {name: deriver.snapshot() for name, deriver in self.derivers.items()}

    def restore(self, snapshots: dict[str, dict[str, Any]]) -> None:
        for name, snapshot in snapshots.items():
            if name in self.derivers:
                self.derivers[name].restore(snapshot)


class MemorySink:
    """Keeps every event in memory as validated wire models (tests); thread-safe.

    Validating here means every event a test sees has passed the wire contract.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, events: list[WireEvent]) -> None:
        validated = [EVENT_ADAPTER.validate_python(event) for event in events]
        with self._lock:
            self.events.extend(validated)

    def of_type(self, event_type: str, equipment: str | None = None) -> list[Event]:
        with self._lock:
            return [
                e
                for e in self.events
                if e.type == event_type
                and (equipment is None or e.equipment.equipment == equipment)
            ]


FLUSH_CHUNK_ITEMS = 1_000
"""Most samples derived in one pipeline call (see ``CoalescingIntake.flush``)."""


class CoalescingIntake:
    """Collects what sources emit and feeds the pipeline as soon as the loop is free.

    ``emit`` (what sources are given) only appends and wakes :meth:`run`; ``run`` derives
    everything emitted so far in one go. Under load, what sources emit while a flush is
    being derived waits for the next flush, so calls coalesce by themselves: one pipeline
    call (one sequence allocation, one buffer submission) covers many PLC requests, with
    no fixed wait added to an event's latency. ``interval_s`` is only a fallback for an
    ``emit`` made off the event loop, which cannot wake ``run``.
    """

    def __init__(self, pipeline: EventPipeline, interval_s: float = 0.02) -> None:
        self._pipeline = pipeline
        self._interval_s = interval_s
        self._pending: list[Sample | ConnectionChange] = []
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def emit(self, items: list[Sample | ConnectionChange]) -> None:
        self._pending.extend(items)
        wake = self._wake
        if wake is not None and not wake.is_set() and _running_loop() is self._loop:
            wake.set()

    def flush(self) -> int:
        """Derive what was emitted since the last flush; returns how many events it made.

        A subscription delivers a whole publishing interval at once (10,700 values at
        10,700 tags). Derived in slices of ``FLUSH_CHUNK_ITEMS``, the events of one slice
        reach the sink before the next slice is derived, so the agent never holds a full
        interval of event dicts at once (about 10 MB at that size).
        """
        items, self._pending = self._pending, []
        made = 0
        for start in range(0, len(items), FLUSH_CHUNK_ITEMS):
            made += len(self._pipeline.on_items(items[start : start + FLUSH_CHUNK_ITEMS]))
        return made

    async def flush_streaming(self) -> int:
        """``flush``, giving the event loop a turn after each slice.

        A poll or publish that changed 10,000 values takes about 100 ms to derive; between
        slices the forwarder publishes what the buffer has committed of the slices before,
        and the sources keep reading, so a burst streams through the agent instead of
        leaving it only once all of it is derived.
        """
        items, self._pending = self._pending, []
        made = 0
        for start in range(0, len(items), FLUSH_CHUNK_ITEMS):
            if start:
                await asyncio.sleep(0)
            made += len(self._pipeline.on_items(items[start : start + FLUSH_CHUNK_ITEMS]))
        return made

    async def run(self, stop: asyncio.Event) -> None:
        """Flush whenever something was emitted, until ``stop``; a last flush on the way out."""
        self._loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if not self._pending:
                    woken = asyncio.ensure_future(wake.wait())
                    await asyncio.wait(
                        (woken, stopping),
                        timeout=self._interval_s,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    woken.cancel()
                wake.clear()
                await self.flush_streaming()
        finally:
            stopping.cancel()
            self._wake = None
        self.flush()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
