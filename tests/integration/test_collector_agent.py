"""The agent's forwarder against the real collector (issue 4's slow-consumer case, now
with the real thing): a broker whose queue for the collector overflows drops batches;
the forwarder sends the unconfirmed ones again and the database ends up with every
event exactly once, the buffer empty."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from _buffer_helpers import events_for, open_buffer
from _collector_helpers import collector_config, running_collector
from _forward_helpers import eventually, eventually_empty, forwarder, mqtt_config, running
from _mosquitto import Mosquitto
from _pg_helpers import fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def test_overflowing_broker_queue_loses_nothing_with_the_real_collector(
    tmp_path: Path,
) -> None:
    # the broker keeps at most 5 in flight + 10 queued messages for the collector and
    # silently drops more: only confirmations, and resends, make delivery lossless
    extra = "max_inflight_messages 5\nmax_queued_messages 10"
    buffer = open_buffer(tmp_path / "buffer.db")
    events = events_for({f"press-{n}": 500 for n in range(4)})
    buffer.submit(events)
    assert buffer.flush(10)
    ids = {event["event_id"] for event in events}
    try:
        with (
            Mosquitto(tmp_path / "small-queue", extra=extra) as broker,
            fresh_database("agent") as url,
        ):
            config = collector_config(broker.port)
            with running_collector(config, url) as collector:
                agent_config = mqtt_config(broker.port, ack_timeout_s=1.5, batch={"max_events": 20})
                async with running(forwarder(agent_config, buffer)) as fwd:
                    await eventually(lambda: fwd.connected, 10, "the agent connected")
                    await eventually_empty(buffer, 120)
                    status = fwd.status()
                stored = await asyncio.to_thread(_stored_ids, url)
                assert status.rejected_batches_total == 0, await asyncio.to_thread(_dead, url)
                assert collector.worker.committed_events >= len(ids)
    finally:
        buffer.close()
    assert stored == ids  # every event, none twice (the query counts rows too)
    assert status.resent_batches_total > 0, "the broker dropped nothing: the test proves nothing"
    assert status.rejected_batches_total == 0


def _dead(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT reason, detail FROM ops.dead_letters LIMIT 3").fetchall()


def _stored_ids(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT event_id::text FROM audit.events").fetchall()
    assert len(rows) == len({row[0] for row in rows})
    return {row[0] for row in rows}
