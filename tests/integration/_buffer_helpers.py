"""Helpers for the buffer tests: deterministic wire events, deadline polling, opening."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from edge_agent.buffer import BufferConfig, EventBuffer

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
PATH = {"enterprise": "acme", "site": "plant-1", "area": "pressing", "line": "line-3"}


def wire_time(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_id_of(equipment: str, seq: int) -> str:
    """A UUIDv7-shaped id that depends only on (equipment, seq), so bodies can be rebuilt."""
    tag = zlib.crc32(equipment.encode()) & 0xFFFF
    high, middle, low = (seq >> 48) & 0xFFF, (seq >> 36) & 0xFFF, seq & 0xFFFFFFFFFFFF
    return f"019b8d34-{tag:04x}-7{high:03x}-8{middle:03x}-{low:012x}"


def wire_event(equipment: str, seq: int) -> dict[str, Any]:
    """A realistic ``tag.sampled`` wire event (~480 bytes encoded), a pure function of its args."""
    at = T0 + timedelta(milliseconds=100 * seq)
    return {
        "schema_version": 1,
        "event_id": event_id_of(equipment, seq),
        "type": "tag.sampled",
        "agent_id": "agent-7",
        "equipment": {**PATH, "equipment": equipment},
        "seq": seq,
        "event_time": wire_time(at),
        "received_time": wire_time(at + timedelta(milliseconds=40)),
        "correlation_id": "order-4711",
        "causation_id": None,
        "payload": {
            "tag": f"{equipment}.hydraulic_pressure",
            "value": round(150 + (seq % 997) * 0.1, 1),
            "unit": "bar",
            "quality": "good",
            "status": "Good",
        },
    }


def body_of(equipment: str, seq: int) -> bytes:
    return orjson.dumps(wire_event(equipment, seq))


def events_for(counts: dict[str, int], start: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Interleaved events: one per equipment in turn, ``counts[e]`` for each."""
    start = start or {}
    out = []
    for i in range(max(counts.values(), default=0)):
        for equipment, count in counts.items():
            if i < count:
                out.append(wire_event(equipment, start.get(equipment, 0) + i))
    return out


def wait_until(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 0.005) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout_s} s: {predicate}")
        time.sleep(interval_s)


def open_buffer(path: Path, **config: Any) -> EventBuffer:
    return EventBuffer.open(BufferConfig(**config), path)
