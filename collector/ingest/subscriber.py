"""The collector's broker connection: a shared, persistent MQTT 5 subscription with
manual acknowledgements.

paho runs its own network thread (``loop_start``) and reconnects by itself. Each
message goes to an :class:`Inbox`, tagged with the connection it came on; the ingest
thread acknowledges it (PUBACK) only after its events are committed. A message from an
earlier connection is never acknowledged on a later one: the broker sends it again after
the reconnect (the session is persistent), and storing it twice is harmless.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.config import CollectorMqttConfig
from lineside_common.mqtt_tls import client_tls_context
from lineside_protocol import EVENTS_SUBSCRIPTION, shared_subscription

log = logging.getLogger("lineside.collector.mqtt")

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30


class Received(NamedTuple):
    """One message waiting to be committed and acknowledged."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int
    """Which connection it came on (see :class:`Subscriber`)."""
    received_at: float
    """time.time() when it arrived (for lag metrics and dead letters)."""


class Inbox:
    """Messages handed from paho's thread to the ingest thread (FIFO, thread-safe).

    Its size is bounded by the broker: it sends at most ``receive_maximum`` messages
    that the collector has not acknowledged.
    """

    def __init__(self) -> None:
        self._items: deque[Received] = deque()
        self._bytes = 0  # payload bytes in _items
        self._ready = threading.Condition()
        self._woken = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Received) -> None:
        with self._ready:
            self._items.append(item)
            self._bytes += len(item.payload)
            self._ready.notify()

    def wake(self) -> None:
        """End a waiting :meth:`take` early (with nothing, if nothing arrived): the
        ingest thread has something else to do, such as confirming a finished commit."""
        with self._ready:
            self._woken = True
            self._ready.notify()

    def oldest_received_at(self) -> float | None:
        items = self._items
        try:
            return items[0].received_at
        except IndexError:
            return None

    def take(
        self, max_events_hint: int, max_wait_s: float, timeout_s: float, stop: threading.Event
    ) -> list[Received]:
        """Wait up to ``timeout_s`` for a first message, then for others until the first
        is ``max_wait_s`` old, until about ``max_events_hint`` events (payload bytes / 500)
        are taken.

        The wait counts from the first message's arrival, not from this call: messages
        that queued up while the ingest thread was busy with the group before are taken
        at once (a burst is not held ``max_wait_s`` more per group)."""
        with self._ready:
            if not self._items and not self._ready.wait_for(
                lambda: bool(self._items) or self._woken or stop.is_set(), timeout_s
            ):
                return []
            if self._woken:
                self._woken = False
            if not self._items:  # woken, or stopping
                return []
            first_at = self._items[0].received_at
            budget = max_events_hint * _BYTES_PER_EVENT
            while not stop.is_set() and self._bytes < budget:
                # min(): a wall clock set back must not stretch the wait
                remaining = min(max_wait_s, first_at + max_wait_s - time.time())
                if remaining <= 0 or not self._ready.wait(remaining):
                    break
            taken: list[Received] = []
            size = 0
            while self._items and (not taken or size < budget):
                item = self._items.popleft()
                taken.append(item)
                size += len(item.payload)
            self._bytes -= size
            return taken


_BYTES_PER_EVENT = 500  # a typical event's size in a batch: converts the event budget


class Subscriber:
    """One collector's MQTT client: subscribe, hand messages to the inbox, PUBACK later."""

    def __init__(
        self,
        config: CollectorMqttConfig,
        inbox: Inbox,
        *,
        client_id: str | None = None,
        on_link_change: Callable[[bool, str], None] | None = None,
    ) -> None:
        self.config = config
        self.inbox = inbox
        self.client_id = client_id or config.resolved_client_id()
        self.subscription = shared_subscription(config.group, EVENTS_SUBSCRIPTION)
        self.connection = 0
        """Incremented on every successful connect; messages remember theirs."""
        self.connected = False
        self.last_error: str | None = None
        self.received_total = 0
        self._on_link_change = on_link_change
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        if config.username is not None:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        if config.tls is not None:
            try:
                context = client_tls_context(config.tls)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"mqtt.tls: cannot load the CA, certificate or key ({exc}); check the "
                    "files named in mqtt.tls"
                ) from None
            client.tls_set_context(context)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (paho's thread retries until it succeeds)."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.config.session_expiry_s
        properties.ReceiveMaximum = self.config.receive_maximum
        self._client.connect_async(
            self.config.host,
            self.config.resolved_port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()
        log.info(
            "event=mqtt_connecting broker=%s client_id=%s subscription=%s",
            self.config.broker,
            self.client_id,
            self.subscription,
        )

    def stop(self) -> None:
        """Disconnect (the session stays on the broker) and end paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()

    # -- called from the ingest thread -----------------------------------------------------

    def acknowledge(self, messages: list[Received]) -> int:
        """PUBACK the messages that came on the current connection; returns how many."""
        current = self.connection
        done = 0
        for message in messages:
            if message.connection != current or message.qos == 0:
                continue
            if self._client.ack(message.mid, message.qos) == MQTTErrorCode.MQTT_ERR_SUCCESS:
                done += 1
        return done

    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish with QoS 1 (confirmations to agents); False when not connected."""
        info = self._client.publish(topic, payload, qos=1)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    # -- paho callbacks (paho's thread) ----------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.error(
                "event=mqtt_refused broker=%s reason=%r hint=%r",
                self.config.broker,
                str(reason),
                "check mqtt.username/password, the broker's ACL and TLS settings",
            )
            return
        self.connection += 1
        client.subscribe(self.subscription, qos=1)
        log.info(
            "event=mqtt_connected broker=%s session_present=%s connection=%d",
            self.config.broker,
            flags.session_present,
            self.connection,
        )

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [str(reason) for reason in reasons if reason.is_failure]
        if failed:
            self.last_error = f"subscription refused: {', '.join(failed)}"
            log.error(
                "event=mqtt_subscribe_refused subscription=%s reason=%r hint=%r",
                self.subscription,
                failed,
                "the broker's ACL must let this user read the events topics through $share",
            )
            return
        self.connected = True
        self.last_error = None
        if self._on_link_change is not None:
            self._on_link_change(True, "subscribed")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was = self.connected
        self.connected = False
        if reason.is_failure:
            self.last_error = f"connection lost: {reason}"
        if was:
            log.warning(
                "event=mqtt_disconnected broker=%s reason=%r", self.config.broker, str(reason)
            )
            if self._on_link_change is not None:
                self._on_link_change(False, str(reason))

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.received_total += 1
        self.inbox.put(
            Received(
                message.topic,
                message.payload,
                message.mid,
                message.qos,
                self.connection,
                time.time(),
            )
        )
