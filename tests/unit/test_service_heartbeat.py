"""The event-loop heartbeat read by the health endpoint's thread."""

from __future__ import annotations

import asyncio
import time

import pytest

from edge_agent.service import LoopHeartbeat


def test_not_alive_before_the_first_beat() -> None:
    heartbeat = LoopHeartbeat()
    assert heartbeat.age_s() is None
    assert heartbeat.alive() is False


def test_alive_after_a_beat_until_stale() -> None:
    heartbeat = LoopHeartbeat(interval_s=0.001, stale_after_s=0.05)
    heartbeat.beat()
    assert heartbeat.alive() is True
    deadline = time.monotonic() + 5
    while heartbeat.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert heartbeat.alive() is False
    assert heartbeat.age_s() is not None
    assert heartbeat.age_s() > 0.05


@pytest.mark.parametrize(("interval_s", "stale_after_s"), [(0, 1), (1, 1), (2, 1), (-1, 5)])
def test_stale_after_must_exceed_the_interval(interval_s: float, stale_after_s: float) -> None:
    with pytest.raises(ValueError, match="0 < interval_s"):
        LoopHeartbeat(interval_s=interval_s, stale_after_s=stale_after_s)


async def test_the_task_keeps_it_alive_and_stop_ends_it() -> None:
    heartbeat = LoopHeartbeat(interval_s=0.01, stale_after_s=0.2)
    heartbeat.start()
    first = heartbeat._last_tick
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if heartbeat._last_tick != first:
            break
        await asyncio.sleep(0.005)
    assert heartbeat._last_tick != first  # the task ticked
    assert heartbeat.alive()
    await heartbeat.stop()
    ticked = heartbeat._last_tick
    await asyncio.sleep(0.05)
    assert heartbeat._last_tick == ticked  # no task left to tick
