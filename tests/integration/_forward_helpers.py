"""Helpers for the forwarder tests: config, a running forwarder, deadline waits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

from _buffer_helpers import PATH

from edge_agent.buffer import EventBuffer
from edge_agent.forward import Forwarder, MqttConfig

AGENT_ID = "agent-7"  # the agent id of _buffer_helpers.wire_event
LOCATION = SimpleNamespace(**PATH)
VERSION = "0.1.0-test"
CONFIG_HASH = "sha256:0123456789abcdef"


def mqtt_config(port: int, **overrides: Any) -> MqttConfig:
    """Test defaults: fast reconnects, short ack timeout, no backlog pacing."""
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "ack_timeout_s": 5.0,
        "backlog_events_per_s": None,
        "reconnect": {"min_backoff_s": 0.1, "max_backoff_s": 0.5, "breaker_reset_s": 1.0},
    }
    settings.update(overrides)
    return MqttConfig.model_validate(settings)


def forwarder(config: MqttConfig, buffer: EventBuffer) -> Forwarder:
    return Forwarder(config, buffer, AGENT_ID, LOCATION, VERSION, CONFIG_HASH)


@contextlib.asynccontextmanager
async def running(fwd: Forwarder, stop_within_s: float = 15.0) -> AsyncIterator[Forwarder]:
    """Run ``fwd`` in a task; on exit stop it and require it to end within the bound."""
    stop = asyncio.Event()
    task = asyncio.create_task(fwd.run(stop))
    try:
        yield fwd
    finally:
        stop.set()
        await asyncio.wait_for(task, stop_within_s)


async def eventually(predicate: Callable[[], Any], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` (without blocking the loop) until true; fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


async def buffer_empty(buffer: EventBuffer) -> bool:
    """True when every event was deleted (deletes applied: flushed first)."""
    await asyncio.to_thread(buffer.flush, 5.0)
    return await asyncio.to_thread(buffer.last_rowid) == 0


async def eventually_empty(buffer: EventBuffer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await buffer_empty(buffer):
        if time.monotonic() >= deadline:
            rows = await asyncio.to_thread(buffer.read_after, 0, 1_000_000)
            raise AssertionError(f"buffer still holds {len(rows)} events after {timeout_s} s")
        await asyncio.sleep(0.05)
