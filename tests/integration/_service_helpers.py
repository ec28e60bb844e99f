"""Helpers for the service-shell tests: sample statuses, a running health server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from edge_agent.service import HealthConfig, HealthServer, LoopHeartbeat
from edge_agent.status import AgentStatus, BufferStatus, DeviceStatus, ForwarderStatus


def sample_status(**changes: Any) -> AgentStatus:
    """A ready agent: two devices up, buffer accepting, broker connected."""
    status = AgentStatus(
        agent_id="line2-pc1",
        version="0.1.0",
        config_hash="c0ffee12",
        started_at="2026-03-02T06:00:00+00:00",
        devices=[
            DeviceStatus(
                "press-1",
                "unit-1",
                "modbus",
                True,
                last_round_trip_s=0.004,
                read_errors_total=3,
                values_total=1200,
            ),
            DeviceStatus("oven", "opcua", "opcua", True, breaker="closed", values_total=77),
        ],
        buffer=BufferStatus(
            path="/var/lib/lineside/agent/buffer.sqlite",
            durability="full",
            accepting=True,
            depth_events=42,
            bytes=4096 * 1024,
            max_bytes=64 * 1024 * 1024,
            oldest_age_s=12.5,
            captured_events_total=5000,
            dropped_events_total={"press-1": 7, "oven": 0},
            commits_total=321,
            last_commit_s=0.002,
            quarantined_files_total=1,
        ),
        forwarder=ForwarderStatus(
            broker="broker.plant:8883",
            connected=True,
            breaker="closed",
            ack_mode="collector",
            published_batches_total=50,
            published_events_total=4958,
            confirmed_events_total=4900,
            resent_batches_total=2,
            inflight_batches=3,
            backlog_events=10,
            last_confirmation_age_s=0.5,
        ),
    )
    for name, value in changes.items():
        setattr(status, name, value)
    return status


def fresh_heartbeat() -> LoopHeartbeat:
    """A heartbeat that counts as alive for an hour (tests without a ticking loop)."""
    heartbeat = LoopHeartbeat(interval_s=1.0, stale_after_s=3600.0)
    heartbeat.beat()
    return heartbeat


def start_server(
    provider: Callable[[], AgentStatus],
    heartbeat: LoopHeartbeat | None = None,
    listen: str = "127.0.0.1:0",
) -> HealthServer:
    """A started HealthServer on a free port (the caller stops it)."""
    server = HealthServer(HealthConfig(listen=listen), provider, heartbeat or fresh_heartbeat())
    server.start()
    return server


def wait_until_sync(predicate: Callable[[], Any], timeout_s: float, message: str) -> Any:
    """Poll ``predicate`` (blocking the caller) until truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout_s} s (last: {result!r})")
        time.sleep(0.01)


async def wait_until(predicate: Callable[[], Any], timeout_s: float, message: str) -> Any:
    """Poll ``predicate`` while letting the event loop run; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout_s} s (last: {result!r})")
        await asyncio.sleep(0.01)
