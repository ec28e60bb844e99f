"""The MQTT forwarder against a real Mosquitto and the real SQLite buffer.

A confirming consumer stands in for the collector: it validates every batch with
``decode_batch`` and acks it. Each test runs its own broker on a free port.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _buffer_helpers import events_for, open_buffer
from _confirming_consumer import ConfirmingConsumer
from _forward_helpers import (
    buffer_empty,
    eventually,
    eventually_empty,
    forwarder,
    mqtt_config,
    running,
)
from _mosquitto import Mosquitto

from edge_agent.buffer import EventBuffer

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as broker:
        yield broker


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[EventBuffer]:
    buffer = open_buffer(tmp_path / "buffer.db")
    yield buffer
    buffer.close()


def fill(buffer: EventBuffer, counts: dict[str, int], start: dict[str, int] | None = None) -> set:
    events = events_for(counts, start)
    buffer.submit(events)
    assert buffer.flush(10)
    return {event["event_id"] for event in events}


async def test_collector_ack_and_nothing_else_deletes_events(
    broker: Mosquitto, buffer: EventBuffer
) -> None:
    acks_on = threading.Event()
    ids = fill(buffer, {"press-1": 300, "press-2": 200})
    config = mqtt_config(broker.port, ack_timeout_s=1.0)
    with ConfirmingConsumer(broker.port, drop_ack=lambda _b, _n: not acks_on.is_set()) as consumer:
        async with running(forwarder(config, buffer)) as fwd:
            await eventually(lambda: consumer.event_ids() == ids, 10, "every event delivered")
            # delivered and PUBACKed, but unconfirmed until the timeout passed: kept
            await eventually(lambda: fwd.status().resent_batches_total > 0, 10, "a resend")
            assert not await buffer_empty(buffer)
            assert len(await _rows(buffer)) == len(ids)
            assert fwd.status().confirmed_events_total == 0
            acks_on.set()
            await eventually_empty(buffer, 15)
            status = fwd.status()
    assert status.confirmed_events_total == len(ids)
    assert status.inflight_batches == 0
    assert consumer.received.invalid == []


async def test_unconfirmed_batch_is_sent_again_with_its_batch_id(
    broker: Mosquitto, buffer: EventBuffer
) -> None:
    ids = fill(buffer, {"press-1": 120, "press-2": 80})
    config = mqtt_config(broker.port, ack_timeout_s=1.0, batch={"max_events": 50})
    lose_first = ConfirmingConsumer(broker.port, drop_ack=lambda _batch_id, seen: seen == 1)
    with lose_first as consumer:
        async with running(forwarder(config, buffer)) as fwd:
            await eventually_empty(buffer, 20)
            status = fwd.status()
    received = consumer.received
    sent_ids = set(received.batch_ids)
    assert len(sent_ids) == status.published_batches_total == 3 + 2  # 50+50+20, 50+30
    assert all(received.batch_ids.count(batch_id) >= 2 for batch_id in sent_ids)
    assert status.resent_batches_total >= len(sent_ids)
    assert consumer.event_ids() == ids
    assert received.duplicates >= len(ids)
    assert received.invalid == []


async def test_rejected_batch_is_deleted_and_counted(
    broker: Mosquitto, buffer: EventBuffer
) -> None:
    fill(buffer, {"press-1": 30, "press-2": 30})

    def reject_press_2(events: list[dict]) -> str | None:
        if events[0]["equipment"]["equipment"] == "press-2":
            return "invalid_event: events[0]: rejected by the test"
        return None

    with ConfirmingConsumer(broker.port, reject=reject_press_2):
        async with running(forwarder(mqtt_config(broker.port), buffer)) as fwd:
            await eventually_empty(buffer, 10)
            status = fwd.status()
    assert status.rejected_batches_total == 1
    assert status.confirmed_events_total == 60


async def test_broker_ack_mode_deletes_on_puback(broker: Mosquitto, buffer: EventBuffer) -> None:
    fill(buffer, {"press-1": 400, "press-2": 100})
    config = mqtt_config(broker.port, ack_mode="broker")
    async with running(forwarder(config, buffer)) as fwd:  # no collector at all
        await eventually_empty(buffer, 10)
        status = fwd.status()
    assert status.ack_mode == "broker"
    assert status.confirmed_events_total == 500
    assert status.resent_batches_total == 0


async def test_mqtt_3_1_1_delivers_with_confirmations(
    broker: Mosquitto, buffer: EventBuffer
) -> None:
    ids = fill(buffer, {"press-1": 250, "press-2": 250})
    config = mqtt_config(broker.port, protocol="3.1.1")
    with ConfirmingConsumer(broker.port) as consumer:
        async with running(forwarder(config, buffer)) as fwd:
            await eventually_empty(buffer, 10)
            assert fwd.connected
            more = fill(buffer, {"press-1": 5}, start={"press-1": 250})  # live, after connect
            await eventually_empty(buffer, 10)
    assert consumer.event_ids() == ids | more
    assert consumer.received.invalid == []
    # Mosquitto logs the protocol (p2 = 3.1.1) and clean session off (c0) of each client
    assert "as agent-7 (p2, c0, k30)" in broker.log.read_text()


async def test_live_events_overtake_the_backlog_after_a_reconnect(
    tmp_path: Path, buffer: EventBuffer
) -> None:
    # a broker that keeps sessions: nothing is lost, so arrival order is publishing order
    broker = Mosquitto(tmp_path / "persistent", persistent=True)
    config = mqtt_config(broker.port, backlog_events_per_s=200, batch={"max_events": 50})
    with broker, ConfirmingConsumer(broker.port) as consumer:
        async with running(forwarder(config, buffer)) as fwd:
            await eventually(lambda: fwd.connected, 10, "connected")
            broker.stop(graceful=True)
            await eventually(lambda: not fwd.connected, 10, "the loss noticed")
            backlog = fill(buffer, {"press-1": 600, "press-2": 600})  # captured while offline
            broker.start()
            await eventually(lambda: fwd.connected and consumer.connected.is_set(), 15, "back")
            live = fill(
                buffer, {"press-1": 5, "press-2": 5}, start={"press-1": 600, "press-2": 600}
            )
            await eventually(lambda: live <= consumer.event_ids(), 10, "the live events")
            backlog_so_far = len(consumer.event_ids() & backlog)
            await eventually(lambda: consumer.event_ids() == backlog | live, 30, "the backlog")
            await eventually_empty(buffer, 10)
    assert backlog_so_far < len(backlog) / 2, "live events waited for the backlog"
    events = consumer.received.events
    assert all(events[event_id]["historical"] is False for event_id in live)
    assert all(events[event_id]["historical"] is True for event_id in backlog)
    # each lane keeps the per-equipment order
    for equipment in ("press-1", "press-2"):
        order = consumer.received.order[equipment]
        assert [seq for seq in order if seq < 600] == list(range(600))
        assert [seq for seq in order if seq >= 600] == list(range(600, 605))


async def test_slow_consumer_and_small_broker_queue_lose_nothing(
    tmp_path: Path, buffer: EventBuffer
) -> None:
    # the broker queues at most 5 + 10 messages for the consumer and silently drops more
    extra = "max_inflight_messages 5\nmax_queued_messages 10"
    with Mosquitto(tmp_path / "small-queue", extra=extra) as broker:
        ids = fill(buffer, {f"press-{n}": 500 for n in range(4)})
        config = mqtt_config(broker.port, ack_timeout_s=1.5, batch={"max_events": 20})
        with ConfirmingConsumer(broker.port, delay_per_batch_s=0.01) as consumer:
            async with running(forwarder(config, buffer)) as fwd:
                await eventually(lambda: fwd.connected, 10, "connected")
                # Mosquitto announces max_inflight_messages as its MQTT 5 Receive Maximum
                assert fwd._link.inflight_limit == 5
                await eventually_empty(buffer, 90)
                status = fwd.status()
    assert consumer.event_ids() == ids
    assert status.resent_batches_total > 0, "the broker dropped nothing: the test proves nothing"
    assert consumer.received.invalid == []


async def _rows(buffer: EventBuffer) -> list:
    return await asyncio.to_thread(buffer.read_after, 0, 1_000_000)
