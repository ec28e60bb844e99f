"""A stand-in collector: subscribes to event batches, "commits" them, answers with acks.

Every batch is decoded with ``lineside_protocol.decode_batch`` (or, with
``validate=False``, parsed with orjson only: the benchmark's fast path), its events are
added to an in-memory store keyed by ``event_id`` and a ``BatchAck`` is published with
QoS 1 to the agent's acks topic, as the real collector does after its commit.

Knobs for fault tests: ``delay_per_batch_s`` (a slow consumer), ``drop_ack`` (lose
acks), ``reject`` (answer ``rejected``). paho runs its own network thread here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from lineside_protocol import (
    EVENTS_SUBSCRIPTION,
    BatchAck,
    agent_ack_topic,
    decode_batch,
    encode_ack,
)


@dataclass
class Received:
    """What the consumer stored, guarded by ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    """event_id -> the event as first received (with ``historical``)."""
    arrival_s: dict[str, float] = field(default_factory=dict)
    """event_id -> time.time() of its first arrival."""
    order: dict[str, list[int]] = field(default_factory=dict)
    """equipment -> seq in arrival order (first arrivals only)."""
    batch_ids: list[str] = field(default_factory=list)
    """batch_id of every batch message received (resends appear again)."""
    ids: set[str] = field(default_factory=set)
    """event_id of every event received (also when ``keep_events`` is off)."""
    live_latency_s: list[float] = field(default_factory=list)
    """With ``measure_live_latency``: arrival minus ``received_time`` of live events."""
    historical_events: int = 0
    """Unique events that arrived with ``historical: true``."""
    duplicates: int = 0
    acks_sent: int = 0
    acks_dropped: int = 0
    invalid: list[str] = field(default_factory=list)


class ConfirmingConsumer:
    """Subscribe to every events topic; ack each batch after storing it."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        client_id: str = "test-collector",
        validate: bool = True,
        delay_per_batch_s: float = 0.0,
        drop_ack: Callable[[str, int], bool] | None = None,
        reject: Callable[[list[dict[str, Any]]], str | None] | None = None,
        username: str | None = None,
        password: str | None = None,
        subscription: str = EVENTS_SUBSCRIPTION,
        keep_events: bool = True,
        measure_live_latency: bool = False,
        session_expiry_s: int = 3600,
    ) -> None:
        self._session_expiry_s = session_expiry_s
        self.received = Received()
        self._subscription = subscription
        self._keep_events = keep_events
        self._measure = measure_live_latency
        self._validate = validate
        self._delay_s = delay_per_batch_s
        self._drop_ack = drop_ack
        self._reject = reject
        self._seen: dict[str, int] = {}
        self.connected = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        client.max_queued_messages_set(0)
        if username:
            client.username_pw_set(username, password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(0.2, 1)
        self._client = client
        self._host, self._port = host, port

    def start(self, timeout_s: float = 10.0) -> ConfirmingConsumer:
        """Connect (persistent session) and wait until subscribed."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self._session_expiry_s
        self._client.connect_async(
            self._host, self._port, keepalive=10, clean_start=False, properties=properties
        )
        self._client.loop_start()
        if not self.connected.wait(timeout_s):
            raise RuntimeError(f"consumer did not connect to {self._host}:{self._port}")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> ConfirmingConsumer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ---- paho callbacks (network thread) ---------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self._subscription, qos=1)
            self.connected.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()

    def _on_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if self._delay_s:
            time.sleep(self._delay_s)
        try:
            batch_id, agent_id, equipment, events = self._decode(message.payload)
        except ValueError as error:
            with self.received.lock:
                self.received.invalid.append(str(error))
            return
        now = time.time()
        received = self.received
        with received.lock:
            received.batch_ids.append(batch_id)
            for event in events:
                event_id = event["event_id"]
                if event_id in received.ids:
                    received.duplicates += 1
                    continue
                received.ids.add(event_id)
                if event.get("historical"):
                    received.historical_events += 1
                if self._measure and not event.get("historical"):
                    captured = datetime.fromisoformat(event["received_time"]).timestamp()
                    received.live_latency_s.append(now - captured)
                if not self._keep_events:
                    continue
                received.events[event_id] = event
                received.arrival_s[event_id] = now
                received.order.setdefault(event["equipment"]["equipment"], []).append(event["seq"])
        seen = self._seen[batch_id] = self._seen.get(batch_id, 0) + 1
        if self._drop_ack is not None and self._drop_ack(batch_id, seen):
            with received.lock:
                received.acks_dropped += 1
            return
        detail = self._reject(events) if self._reject is not None else None
        ack = BatchAck(
            batch_id=batch_id,
            agent_id=agent_id,
            committed_at=datetime.now(UTC),
            status="rejected" if detail else "committed",
            detail=detail,
        )
        topic = agent_ack_topic(equipment["enterprise"], equipment["site"], agent_id)
        client.publish(topic, encode_ack(ack), qos=1)
        with received.lock:
            received.acks_sent += 1

    def _decode(self, payload: bytes) -> tuple[str, str, dict[str, str], list[dict[str, Any]]]:
        if self._validate:
            batch = decode_batch(payload)
            document = orjson.loads(payload)  # the events as sent (with "historical")
            return batch.batch_id, batch.agent_id, batch.equipment.model_dump(), document["events"]
        document = orjson.loads(payload)
        return (
            document["batch_id"],
            document["agent_id"],
            document["equipment"],
            document["events"],
        )

    # ---- reading the results (any thread) ---------------------------------------------

    def event_count(self) -> int:
        with self.received.lock:
            return len(self.received.ids)

    def historical_count(self) -> int:
        with self.received.lock:
            return self.received.historical_events

    def event_ids(self) -> set[str]:
        with self.received.lock:
            return set(self.received.ids)
