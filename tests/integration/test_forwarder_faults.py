"""Faults: the broker down for 60 s under load, and the agent's process killed (last will).

The 60 s outage is THE fault test of the issue and takes about 1.5 minutes; every other
forwarder test is short.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from _buffer_helpers import open_buffer, wire_event
from _confirming_consumer import ConfirmingConsumer
from _forward_helpers import (
    AGENT_ID,
    CONFIG_HASH,
    LOCATION,
    VERSION,
    eventually,
    eventually_empty,
    forwarder,
    mqtt_config,
    running,
)
from _mosquitto import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.buffer import EventBuffer
from lineside_protocol import AgentStatusMessage, agent_status_topic, decode_status

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
OUTAGE_S = 60.0


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[EventBuffer]:
    buffer = open_buffer(tmp_path / "buffer.db")
    yield buffer
    buffer.close()


class Producer:
    """Submits events for 20 equipment at a steady rate, like a running agent."""

    def __init__(self, buffer: EventBuffer, events_per_s: float) -> None:
        self.buffer = buffer
        self.interval_s = 20 / events_per_s  # one event per equipment per tick
        self.produced: dict[str, float] = {}  # event_id -> time.monotonic() submitted
        self.stop = asyncio.Event()
        self._seq = 0

    async def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            events = [wire_event(f"press-{n}", self._seq) for n in range(20)]
            self._seq += 1
            self.buffer.submit(events)
            now = time.monotonic()
            self.produced.update((event["event_id"], now) for event in events)
            next_at += self.interval_s
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


@pytest.mark.timeout(300)
@pytest.mark.slow(70)
async def test_fault_broker_down_60s_under_load_every_event_arrives(
    tmp_path: Path, buffer: EventBuffer
) -> None:
    broker = Mosquitto(tmp_path / "broker")  # no persistence: the restart loses sessions
    config = mqtt_config(broker.port, ack_timeout_s=3.0, max_inflight_batches=16)
    producer = Producer(buffer, events_per_s=400)
    with broker, ConfirmingConsumer(broker.port) as consumer:
        async with running(forwarder(config, buffer)) as fwd:
            producing = asyncio.create_task(producer.run())
            await eventually(lambda: consumer.event_count() >= 2000, 20, "events flowing")
            broker.stop()
            await eventually(lambda: not fwd.connected, 10, "the loss noticed")
            noticed_at = time.monotonic()
            while time.monotonic() - noticed_at < OUTAGE_S:  # the outage itself
                status = fwd.status()
                assert status.inflight_batches <= 16  # bounded while the broker is away
                assert not status.connected
                await asyncio.sleep(1.0)
            restart_at = time.monotonic()
            broker.start()
            await eventually(lambda: fwd.connected, 15, "the forwarder back")
            reconnected_at = time.monotonic()
            await eventually(
                lambda: consumer.event_count() >= len(producer.produced) - 400, 60, "catching up"
            )

            def live_after_reconnect() -> bool:
                # on a quiet machine the backlog is sent in under a second: go on producing
                # until events made well after the reconnect have arrived too
                received = consumer.event_ids()
                return any(
                    at > reconnected_at + 1.0 and event_id in received
                    for event_id, at in list(producer.produced.items())
                )

            await eventually(live_after_reconnect, 30, "live events after the reconnect")
            producer.stop.set()
            await producing
            assert buffer.flush(10)
            produced = set(producer.produced)
            await eventually(lambda: consumer.event_ids() >= produced, 90, "every event")
            await eventually_empty(buffer, 30)
            status = fwd.status()
    assert consumer.event_ids() == produced
    assert consumer.received.invalid == []
    assert status.confirmed_events_total >= len(produced)
    events = consumer.received.events
    offline = [i for i, at in producer.produced.items() if noticed_at < at < restart_at]
    assert len(offline) > 0.9 * OUTAGE_S * 400
    assert all(events[event_id]["historical"] is True for event_id in offline)
    after = [i for i, at in producer.produced.items() if at > reconnected_at + 1.0]
    assert after, "no events were produced after the reconnect"
    assert all(events[event_id]["historical"] is False for event_id in after)


class StatusWatcher:
    """Collects (status message, retained flag) from an agent's status topic."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[AgentStatusMessage, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        topic = agent_status_topic(LOCATION.enterprise, LOCATION.site, AGENT_ID)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watcher-{time.time_ns()}")
        client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        self._client = client
        assert self._subscribed.wait(10), "status watcher did not subscribe"

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((decode_status(message.payload), bool(message.retain)))

    def statuses(self) -> list[str]:
        with self._lock:
            return [message.status for message, _retained in self.messages]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def test_online_birth_and_offline_last_will_after_sigkill(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        agent = subprocess.Popen(
            [sys.executable, str(HERE / "_forwarder_process.py"), str(broker.port),
             str(tmp_path / "agent-buffer.db")],
            stderr=(tmp_path / "agent.log").open("wb"),
        )  # fmt: skip
        try:
            watcher = StatusWatcher(broker.port)
            _wait(lambda: "online" in watcher.statuses(), 20, "the birth message")
            online = next(m for m, _r in watcher.messages if m.status == "online")
            assert (online.agent_id, online.version, online.config_hash) == (
                AGENT_ID,
                VERSION,
                CONFIG_HASH,
            )
            agent.send_signal(signal.SIGKILL)
            agent.wait(10)
            _wait(lambda: watcher.statuses()[-1:] == ["offline"], 20, "the last will")
            watcher.close()
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait(10)
        late = StatusWatcher(broker.port)  # a newcomer gets the retained last will
        _wait(lambda: late.messages, 10, "the retained status")
        message, retained = late.messages[0]
        late.close()
    assert retained
    assert message.status == "offline"
    assert message.agent_id == AGENT_ID


async def test_graceful_stop_leaves_a_retained_offline(tmp_path: Path, buffer: EventBuffer) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        async with running(forwarder(mqtt_config(broker.port), buffer)) as fwd:
            await eventually(lambda: fwd.connected, 10, "connected")
        assert not fwd.connected
        late = await asyncio.to_thread(StatusWatcher, broker.port)
        await eventually(lambda: late.messages, 10, "the retained status")
        late.close()
    message, retained = late.messages[0]
    assert retained
    assert message.status == "offline"


def _wait(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)
