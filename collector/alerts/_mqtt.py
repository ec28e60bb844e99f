"""The MQTT destination of alert events: one paho client (MQTT 5) on the collector's
broker; an event counts as delivered when the broker's PUBACK says success (a publish
the ACL refuses fails and is tried again later)."""

from __future__ import annotations

import logging
import ssl
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.config import CollectorMqttConfig
from lineside_common.mqtt_tls import client_tls_context
from lineside_protocol.alerts import alert_topic

from .deliver import DeliveryError
from .store import OutboxItem

log = logging.getLogger("lineside.collector.alerts")

PUBACK_TIMEOUT_S = 10.0


class MqttSender:
    """Publishes alert events with QoS 1 on the collector's broker (own client id)."""

    destination = "mqtt"
    max_send_s = PUBACK_TIMEOUT_S

    def __init__(self, config: CollectorMqttConfig, client_id: str) -> None:
        self.config = config
        self.client_id = client_id[:64]
        self.connected = False
        self.last_error: str | None = None
        self._acks: dict[int, ReasonCode | None] = {}
        self._given_up: set[int] = set()
        self._acked = threading.Condition()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if config.username is not None:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        if config.tls is not None:
            try:
                client.tls_set_context(client_tls_context(config.tls))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"mqtt.tls: cannot load the CA, certificate or key ({exc}); check the "
                    "files named in mqtt.tls"
                ) from None
        client.reconnect_delay_set(1, 30)
        # bounded: publish() answers MQTT_ERR_QUEUE_SIZE instead of piling up messages
        client.max_queued_messages_set(100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client

    def start(self) -> None:
        """Connect in the background (paho's thread reconnects by itself)."""
        self._client.connect_async(
            self.config.host, self.config.resolved_port, keepalive=self.config.keepalive_s
        )
        self._client.loop_start()

    def ready(self) -> bool:
        return self.connected

    def send(self, item: OutboxItem) -> None:
        if not self.connected:
            raise DeliveryError(f"not connected to the broker {self.config.broker}")
        topic = alert_topic(item.event.subject)
        # not under self._acked: paho calls on_publish holding its own message lock, which
        # publish() takes too (a lock-order inversion); a PUBACK that comes first waits
        # in self._acks
        info = self._client.publish(topic, item.body, qos=1)
        with self._acked:
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._give_up(info.mid)  # paho may still send it after a reconnect
                raise DeliveryError(f"publish to {topic} refused by the client: {info.rc.name}")
            if not self._acked.wait_for(lambda: info.mid in self._acks, PUBACK_TIMEOUT_S):
                self._give_up(info.mid)
                raise DeliveryError(f"no PUBACK for {topic} within {PUBACK_TIMEOUT_S:.0f} s")
            reason = self._acks.pop(info.mid)
        if reason is not None and reason.is_failure:
            raise DeliveryError(
                f"broker refused the publish to {topic}: {reason} (its ACL must let the "
                "collector write .../alerts topics)"
            )

    def _give_up(self, mid: int) -> None:
        # a late PUBACK of this mid must not confirm a later publish that reuses it
        if len(self._given_up) > 1000:
            self._given_up.clear()
        self._given_up.add(mid)
        self._acks.pop(mid, None)

    def interrupt(self) -> None:
        """Nothing to cut short: a send waits at most PUBACK_TIMEOUT_S."""

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

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
                "event=alerts_mqtt_refused broker=%s reason=%r", self.config.broker, str(reason)
            )
            return
        self.connected = True
        self.last_error = None
        log.info(
            "event=alerts_mqtt_connected broker=%s client_id=%s", self.config.broker, self.client_id
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self.connected:
            log.warning(
                "event=alerts_mqtt_disconnected broker=%s reason=%r",
                self.config.broker,
                str(reason),
            )
        self.connected = False

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode | None,
        properties: Properties | None,
    ) -> None:
        with self._acked:
            if mid in self._given_up:  # a late PUBACK of a timed-out publish
                self._given_up.discard(mid)
                return
            self._acks[mid] = reason
            self._acked.notify_all()
