"""Helpers for the collector tests: realistic batches, a publishing agent, a service thread.

Batches follow docs/protocol.md; the "agent" here is a paho client that publishes
batches and records the acks the collector sends to its acks topic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from collector.config import CollectorConfig
from lineside_protocol import agent_ack_topic, new_event_ids

PATH = {"enterprise": "acme", "site": "plant-1", "area": "pressing", "line": "line-3"}
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def wire_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def events_topic(equipment: str) -> str:
    return "lineside/v1/{enterprise}/{site}/{area}/{line}/".format(**PATH) + f"{equipment}/events"


@dataclass
class Equipment:
    """One machine's event stream: sequence numbers and times move on with each event."""

    name: str
    agent_id: str = "agent-7"
    seq: int = 0
    at: datetime = T0

    def event(self, kind: str, payload: dict[str, Any], step_s: float = 1.0) -> dict[str, Any]:
        self.at += timedelta(seconds=step_s)
        event = {
            "schema_version": 1,
            "event_id": new_event_ids(1)[0],
            "type": kind,
            "agent_id": self.agent_id,
            "equipment": {**PATH, "equipment": self.name},
            "seq": self.seq,
            "event_time": wire_time(self.at),
            "received_time": wire_time(self.at + timedelta(milliseconds=40)),
            "correlation_id": "order-1",
            "causation_id": None,
            "historical": False,
            "payload": payload,
        }
        self.seq += 1
        return event

    def counted(self, good: int, scrap: int = 0) -> dict[str, Any]:
        return self.event(
            "production.counted",
            {"good": good, "scrap": scrap, "total": good + scrap, "product_id": "p-1"},
        )

    def state(self, state: str, previous: str | None = None) -> dict[str, Any]:
        return self.event("equipment.state_changed", {"state": state, "previous_state": previous})

    def sampled(self, value: float) -> dict[str, Any]:
        return self.event(
            "tag.sampled",
            {
                "tag": f"{self.name}.pressure",
                "value": value,
                "unit": "bar",
                "quality": "good",
                "status": "Good",
            },
        )

    def batch(self, events: list[dict[str, Any]]) -> tuple[str, str, bytes]:
        """(topic, batch_id, payload) of a batch of ``events``."""
        batch_id = new_event_ids(1)[0]
        document = {
            "schema_version": 1,
            "batch_id": batch_id,
            "agent_id": self.agent_id,
            "equipment": {**PATH, "equipment": self.name},
            "sent_at": wire_time(datetime.now(UTC)),
            "events": events,
        }
        return events_topic(self.name), batch_id, orjson.dumps(document)


@dataclass
class FakeAgent:
    """Publishes batches with QoS 1 and records the acks addressed to ``agent_id``."""

    port: int
    agent_id: str = "agent-7"
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    ack_count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fake-{self.agent_id}-{time.monotonic_ns()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        subscribed = threading.Event()
        client.on_message = self._on_message
        client.on_subscribe = lambda *_args: subscribed.set()
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        client.subscribe(agent_ack_topic(PATH["enterprise"], PATH["site"], self.agent_id), qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("fake agent: no SUBACK")
        self.client = client

    def _on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        ack = orjson.loads(message.payload)
        with self.lock:
            self.acks[ack["batch_id"]] = ack
            self.ack_count += 1

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def collector_config(broker_port: int, **sections: dict[str, Any]) -> CollectorConfig:
    """A collector configuration for tests: the private broker, health on a free port."""
    document: dict[str, Any] = {
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "session_expiry_s": 600},
        "health": {"listen": "127.0.0.1:0"},
        "ingest": {"max_wait_ms": 5, "retry_min_s": 0.2, "retry_max_s": 1.0},
    }
    for name, values in sections.items():
        document.setdefault(name, {}).update(values)
    return CollectorConfig.model_validate(document)


@contextmanager
def running_collector(
    config: CollectorConfig, database_url: str, client_id: str = "collector-test"
) -> Iterator[Any]:
    """A CollectorService in a thread; stopped (and its thread joined) on exit."""
    from collector.service.app import CollectorService

    service = CollectorService(config, database_url, client_id=client_id)
    thread = threading.Thread(
        target=service.run, kwargs={"install_signal_handlers": False}, daemon=True
    )
    thread.start()
    try:
        wait_until(lambda: service.subscriber.connected, 30, "the collector to subscribe")
        yield service
    finally:
        service.stop()
        thread.join(30)
        assert not thread.is_alive(), "the collector did not stop within 30 s"


class CollectorProcess:
    """``oee-collector run`` as a separate OS process, with its /status on a free port."""

    def __init__(self, workdir: Any, broker_port: int, database_url: str, client_id: str) -> None:
        import subprocess
        import sys
        from pathlib import Path

        from _mosquitto import free_port

        self.health_port = free_port()
        config = Path(workdir) / f"{client_id}.yaml"
        config.write_text(
            f"mqtt:\n  port: {broker_port}\n  session_expiry_s: 600\n"
            f"health:\n  listen: 127.0.0.1:{self.health_port}\n"
        )
        cli = Path(sys.executable).parent / "oee-collector"
        self.process = subprocess.Popen(
            [str(cli), "run", str(config), "--dsn", database_url, "--client-id", client_id],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def status(self) -> dict[str, Any]:
        import urllib.request

        url = f"http://127.0.0.1:{self.health_port}/status"
        with urllib.request.urlopen(url, timeout=2) as answer:
            return orjson.loads(answer.read())

    def subscribed(self) -> bool:
        try:
            return bool(self.status()["mqtt"]["connected"])
        except OSError:
            return False

    def stop(self) -> str:
        """SIGTERM; returns its stderr; fails if it does not exit cleanly within 30 s."""
        self.process.terminate()
        _out, err = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, err[-2000:]
        return err
