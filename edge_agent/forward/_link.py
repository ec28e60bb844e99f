"""One paho-mqtt 2.x client driven by the asyncio loop (no paho network thread).

The socket is registered with the event loop (``add_reader`` -> ``loop_read``,
``add_writer`` -> ``loop_write``) and a timer calls ``loop_misc`` for keep-alive, so
every paho callback after the handshake runs on the loop thread and the forwarder's
state needs no locks. Only the blocking part of connecting (TCP, TLS handshake, CONNECT
and waiting for CONNACK) runs in a worker thread, inside the circuit breaker; nothing
else touches the client meanwhile. Callbacks that paho fires in that worker (an ack
delivered right after CONNACK, a PUBACK of a message paho resent) are handed to the
loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pybreaker
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.forward.config import MqttConfig
from edge_agent.forward.errors import BrokerConnectError, BrokerRefusedError
from lineside_common.mqtt_tls import client_tls_context

log = logging.getLogger("lineside.agent.mqtt")

MISC_INTERVAL_S = 1.0
MAX_INFLIGHT = 20  # FIELD-NOTES: 20 beat 1000 (paho rescans its list on each ack)

OnMessage = Callable[[str, bytes], None]
OnPuback = Callable[[int, bool, str], None]
OnLost = Callable[[str, bool], None]
"""``on_lost(reason, expected)``: expected is True after our own DISCONNECT."""

_CREDENTIALS_HINT = (
    "check mqtt.username and mqtt.password against the broker's password file, and the "
    "broker's ACL (and client certificate, with mutual TLS)"
)
_CLIENT_ID_HINT = "the broker rejected the client id; set mqtt.client_id to a valid unique id"
_HINTS = {  # CONNACK reason codes: MQTT 5 (128+) and MQTT 3.1.1 (1-5)
    134: _CREDENTIALS_HINT,  # bad user name or password
    135: _CREDENTIALS_HINT,  # not authorized (Mosquitto's answer to a wrong password)
    133: _CLIENT_ID_HINT,
    4: _CREDENTIALS_HINT,
    5: _CREDENTIALS_HINT,
    2: _CLIENT_ID_HINT,
}


def build_tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    """TLS 1.2+ context with the configured CA and client certificate, or None."""
    tls = config.tls
    if tls is None:
        return None
    try:
        context = client_tls_context(tls)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerConnectError(
            f"mqtt.tls: cannot load the CA, certificate or key ({exc}); check the files "
            "named in mqtt.tls"
        ) from None
    return context


class MqttLink:
    """The broker connection: connect (blocking part in a thread), publish, subscribe."""

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        on_message: OnMessage,
        on_puback: OnPuback,
        on_lost: OnLost,
    ) -> None:
        self._config = config
        self._on_message_cb = on_message
        self._on_puback_cb = on_puback
        self._on_lost_cb = on_lost
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=config.reconnect.breaker_fail_max,
            reset_timeout=config.reconnect.breaker_reset_s,
            name="mqtt-connect",
        )
        v5 = config.protocol == "5"
        self._v5 = v5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            reconnect_on_failure=False,
        )
        # paho never queues on its own (0: no inflight limit of its own): the forwarder
        # keeps at most inflight_limit publishes unacknowledged, so paho's list stays short
        client.max_inflight_messages_set(0)
        self.inflight_limit = MAX_INFLIGHT
        """Most publishes awaiting a PUBACK: 20, or less when the broker says so (MQTT 5)."""
        # bounded: the forwarder's window limits what it publishes; a full paho queue is
        # reported as MQTT_ERR_QUEUE_SIZE, never an unbounded backlog in memory
        client.max_queued_messages_set(config.max_inflight_batches * 2 + 16)
        client.connect_timeout = config.connect_timeout_s
        if config.username is not None:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        context = build_tls_context(config)
        if context is not None:
            client.tls_set_context(context)
        client.on_connect = self._paho_on_connect
        client.on_disconnect = self._paho_on_disconnect
        client.on_message = self._paho_on_message
        client.on_publish = self._paho_on_publish
        client.on_subscribe = self._paho_on_subscribe
        client.on_socket_close = self._paho_on_socket_close
        client.on_socket_register_write = self._paho_on_register_write
        client.on_socket_unregister_write = self._paho_on_unregister_write
        self._client = client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._attached: Any = None  # the socket registered with the loop
        self._misc: asyncio.TimerHandle | None = None
        self._connack: tuple[ReasonCode, bool] | None = None
        self._closing = False
        self.connected = False
        self.last_error: str | None = None

    # ---- connecting ---------------------------------------------------------------

    def will_set(self, topic: str, payload: bytes) -> None:
        """The retained QoS 1 last will for the next connect."""
        self._client.will_set(topic, payload, qos=1, retain=True)

    async def connect(self) -> bool:
        """One connect attempt through the breaker; returns the broker's session_present."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._closing = False
        session_present = await asyncio.to_thread(self.breaker.call, self._connect_blocking)
        self._attach()
        return session_present

    def _connect_blocking(self) -> bool:
        """TCP + TLS + CONNECT + CONNACK, in a worker thread (the client is idle meanwhile)."""
        config = self._config
        client = self._client
        self._connack = None
        try:
            if self._v5:
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = config.session_expiry_s
                client.connect(
                    config.host,
                    config.resolved_port,
                    config.keepalive_s,
                    clean_start=False,
                    properties=properties,
                )
            else:
                client.connect(config.host, config.resolved_port, config.keepalive_s)
            client.loop_write()  # the CONNECT packet (no event loop is attached yet)
            deadline = time.monotonic() + config.connect_timeout_s
            while self._connack is None:
                sock = client.socket()
                remaining = deadline - time.monotonic()
                if sock is None or remaining <= 0:
                    break
                readable = getattr(sock, "pending", lambda: 0)() > 0
                if not readable:
                    readable = bool(select.select([sock], [], [], min(remaining, 0.5))[0])
                if readable:
                    client.loop_read()
        except ssl.SSLError as exc:  # before OSError: it is one
            self._close_quietly()
            raise self._failed(
                f"broker {config.broker}: TLS handshake failed: {_describe(exc)}; check "
                f"mqtt.tls.ca_file and that the broker's certificate names {config.host}"
            ) from None
        except (OSError, ValueError) as exc:
            self._close_quietly()
            raise self._failed(f"broker {config.broker} unreachable: {_describe(exc)}") from None
        connack = self._connack
        if connack is None:
            closed = client.socket() is None
            self._close_quietly()
            if closed:
                raise self._failed(
                    f"broker {config.broker} closed the connection before its CONNACK; with "
                    "TLS, check that it accepts the client certificate (mqtt.tls.cert_file) "
                    "and the TLS version, else see the broker's log"
                )
            raise self._failed(
                f"broker {config.broker} sent no CONNACK within {config.connect_timeout_s} s; "
                "is it an MQTT broker, and does the port match the TLS setting?"
            )
        reason, session_present = connack
        if reason.is_failure:
            self._close_quietly()
            code = reason.value
            hint = _HINTS.get(code, "see the broker's log for the reason")
            error = BrokerRefusedError(config.broker, str(reason), hint)
            self.last_error = str(error)
            raise error
        return session_present

    def _failed(self, message: str) -> BrokerConnectError:
        self.last_error = message
        return BrokerConnectError(message)

    def _close_quietly(self) -> None:
        sock = self._client.socket()
        if sock is not None:
            sock.close()  # paho closes it again on the next connect; that is harmless

    def _attach(self) -> None:
        loop = self._loop
        sock = self._client.socket()
        if loop is None or sock is None:
            raise self._failed(f"broker {self._config.broker} closed the connection at once")
        self._attached = sock
        with contextlib.suppress(OSError):  # small acks must not wait for Nagle's algorithm
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop.add_reader(sock, self._on_readable)
        if self._client.want_write():
            loop.add_writer(sock, self._on_writable)
        self._misc = loop.call_later(MISC_INTERVAL_S, self._on_misc)
        self.connected = True
        self.last_error = None

    # ---- I/O driven by the event loop ---------------------------------------------

    def _on_readable(self) -> None:
        client = self._client
        while True:
            rc = client.loop_read()
            sock = client.socket()
            # TLS may hold decrypted bytes the selector cannot see
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or sock is None:
                return
            if not getattr(sock, "pending", lambda: 0)():
                return

    def _on_writable(self) -> None:
        self._client.loop_write()

    def _on_misc(self) -> None:
        self._misc = None
        if self._attached is None:
            return
        self._client.loop_misc()
        if self._attached is not None and self._loop is not None:
            self._misc = self._loop.call_later(MISC_INTERVAL_S, self._on_misc)

    def _detach(self, sock: Any) -> None:
        loop = self._loop
        if loop is not None and sock is self._attached:
            loop.remove_reader(sock)
            loop.remove_writer(sock)
            self._attached = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    # ---- publishing -----------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> tuple[int | None, str]:
        """Publish with QoS 1; returns ``(mid, rc_text)``, mid None when paho refused it.

        MQTT_ERR_NO_CONN counts as taken: paho keeps the message and sends it after the
        reconnect. MQTT_ERR_QUEUE_SIZE (and anything else) means the message was dropped.
        """
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return info.mid, ""
        return None, mqtt.error_string(info.rc)

    def subscribe(self, topic: str) -> None:
        """Subscribe with QoS 1 (a refusal is logged when the SUBACK arrives)."""
        rc, _mid = self._client.subscribe(topic, qos=1)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("mqtt subscribe failed topic=%s rc=%s", topic, mqtt.error_string(rc))

    def disconnect(self) -> None:
        """Send DISCONNECT (normal: the broker discards the will)."""
        self._closing = True
        self._client.disconnect()

    def close(self) -> None:
        """Drop the socket without DISCONNECT (used when a graceful stop timed out)."""
        self._closing = True
        sock = self._client.socket()
        if sock is not None:
            self._detach(sock)
            sock.close()
        self.connected = False

    # ---- paho callbacks ---------------------------------------------------------------

    def _in_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        if self._in_loop_thread():
            callback(*args)
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(callback, *args)

    def _paho_on_connect(
        self, _client: Any, _userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        # MQTT 5: more unacked publishes than the broker's Receive Maximum and it disconnects
        # us; paho ignores the property, so the forwarder keeps below it itself
        receive_maximum = getattr(props, "ReceiveMaximum", None)
        self.inflight_limit = min(MAX_INFLIGHT, receive_maximum or MAX_INFLIGHT)
        self._connack = (reason, bool(flags.session_present))

    def _paho_on_disconnect(
        self, _client: Any, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if not self._in_loop_thread() or not self.connected:
            return  # a failed connect attempt: _connect_blocking reports it
        self.connected = False
        if self._attached is not None:
            self._detach(self._attached)
        if not self._closing:
            self.last_error = f"connection to {self._config.broker} lost: {reason}"
        self._on_lost_cb(str(reason), self._closing)

    def _paho_on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._to_loop(self._on_message_cb, message.topic, message.payload)

    def _paho_on_publish(
        self, _client: Any, _userdata: Any, mid: int, reason: ReasonCode, _props: Any
    ) -> None:
        self._to_loop(self._on_puback_cb, mid, reason.is_failure, str(reason))

    def _paho_on_subscribe(
        self, _client: Any, _userdata: Any, _mid: int, reasons: list[ReasonCode], _props: Any
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                self.last_error = (
                    f"broker {self._config.broker} refused the ack subscription: {reason}; "
                    "check the broker's ACL for this agent"
                )
                log.error(
                    "mqtt subscription refused broker=%s reason=%s", self._config.broker, reason
                )

    def _paho_on_socket_close(self, _client: Any, _userdata: Any, sock: Any) -> None:
        if self._in_loop_thread():
            self._detach(sock)

    def _paho_on_register_write(self, _client: Any, _userdata: Any, sock: Any) -> None:
        if self._in_loop_thread() and self._loop is not None and sock is self._attached:
            self._loop.add_writer(sock, self._on_writable)

    def _paho_on_unregister_write(self, _client: Any, _userdata: Any, sock: Any) -> None:
        if self._in_loop_thread() and self._loop is not None and sock is self._attached:
            self._loop.remove_writer(sock)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
