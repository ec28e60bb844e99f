"""``MqttConfig``: the ``mqtt:`` section of the agent's YAML (pydantic v2).

Every field has a description: the models become the documented configuration schema.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from lineside_common.mqtt_tls import BrokerAddress, TlsConfig
from lineside_protocol import MAX_BATCH_BYTES, MAX_BATCH_EVENTS

__all__ = ["BatchConfig", "MqttConfig", "ReconnectConfig", "TlsConfig"]

KIB = 1024
MIB = 1024 * KIB


class BatchConfig(BaseModel):
    """How events are grouped into MQTT messages (one message = one equipment's events)."""

    model_config = ConfigDict(extra="forbid")

    max_events: int = Field(
        500, ge=1, le=MAX_BATCH_EVENTS, description="Most events in one batch message"
    )
    max_bytes: int = Field(
        256 * KIB,
        ge=4 * KIB,
        le=MAX_BATCH_BYTES,
        description="Largest batch message in bytes (the collector refuses more than 1 MiB); "
        "a single event larger than this is sent alone",
    )
    linger_ms: int = Field(
        10,
        ge=0,
        le=10_000,
        description="How long a live event may wait for more events of its equipment before "
        "its batch is sent: more latency, fewer and larger messages",
    )


class ReconnectConfig(BaseModel):
    """Reconnecting to the broker: jittered exponential backoff behind a circuit breaker."""

    model_config = ConfigDict(extra="forbid")

    min_backoff_s: float = Field(
        1.0, gt=0, le=60, description="Wait before the first reconnect attempt"
    )
    max_backoff_s: float = Field(
        30.0, gt=0, le=3600, description="Longest wait between two reconnect attempts"
    )
    breaker_fail_max: int = Field(
        5,
        ge=1,
        description="Failed connects in a row that open the circuit breaker (then attempts "
        "fail fast until breaker_reset_s has passed)",
    )
    breaker_reset_s: float = Field(
        30.0, gt=0, description="How long the open breaker refuses attempts before one trial"
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> ReconnectConfig:
        if self.min_backoff_s > self.max_backoff_s:
            raise ValueError(
                f"reconnect: min_backoff_s {self.min_backoff_s} is larger than max_backoff_s "
                f"{self.max_backoff_s}"
            )
        return self


class MqttConfig(BrokerAddress, BaseModel):
    """The MQTT broker the agent forwards its buffered events to."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="Broker host name or IP address", min_length=1)
    port: int | None = Field(
        None, ge=1, le=65535, description="Broker port; default 8883 with tls, else 1883"
    )
    protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT protocol version; 3.1.1 for brokers without MQTT 5"
    )
    client_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="MQTT client id; default: the agent id. Must be stable: the broker keeps "
        "the agent's session (its ack subscription and pending acks) under this id",
    )
    username: str | None = Field(None, description="Broker user name")
    password: SecretStr | None = Field(
        None,
        description="Broker password; use ${credential:NAME} or ${env:NAME} rather than the "
        "password itself. Never logged",
    )
    tls: TlsConfig | None = Field(None, description="TLS settings; omit for plain TCP")
    keepalive_s: int = Field(
        30,
        ge=5,
        le=3600,
        description="MQTT keep-alive: the broker declares the agent gone (and publishes its "
        "'offline' last will) after 1.5 times this without traffic; the agent notices a "
        "dead broker within about twice this",
    )
    connect_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Time allowed for TCP, TLS and the MQTT handshake"
    )
    session_expiry_s: int = Field(
        86_400,
        ge=0,
        le=4_294_967_295,
        description="MQTT 5: how long the broker keeps the agent's session (and acks published "
        "for it) while the agent is offline. MQTT 3.1.1 sessions are kept as the broker is "
        "configured",
    )
    batch: BatchConfig = Field(
        default_factory=BatchConfig, description="Batching of events into messages"
    )
    ack_mode: Literal["collector", "broker"] = Field(
        "collector",
        description="collector: delete events from the buffer when the collector confirms "
        "it stored them (safe); broker: delete on the broker's PUBACK (faster, loses events "
        "the broker drops or a collector never stores)",
    )
    ack_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="A batch without the collector's confirmation after this long is sent "
        "again (same batch_id and events; the collector stores each event once)",
    )
    max_inflight_batches: int = Field(
        256,
        ge=1,
        le=1000,
        description="Most batches sent and not yet confirmed (with max_inflight_bytes); when "
        "reached the agent stops reading the buffer (the buffer is the queue). Live events go "
        "as one batch per equipment: keep it above the number of equipment, or a burst of "
        "changes waits for the collector's confirmations of the first batches",
    )
    max_inflight_bytes: int = Field(
        8 * MIB,
        ge=256 * KIB,
        le=1024 * MIB,
        description="Most bytes of batch messages sent and not yet confirmed (kept in memory "
        "for sending again); the backlog uses at most three quarters of it and of "
        "max_inflight_batches, the rest is kept for live events",
    )
    backlog_events_per_s: float | None = Field(
        20_000.0,
        gt=0,
        description="Rate at which events captured while the broker was unreachable are "
        "replayed (historical: true) after reconnecting; live events always go first. null: "
        "as fast as confirmations allow",
    )
    stop_timeout_s: float = Field(
        5.0,
        ge=0,
        le=300,
        description="On stop, how long to wait for confirmations of batches already sent "
        "before publishing 'offline' and disconnecting (unconfirmed events stay buffered)",
    )
    reconnect: ReconnectConfig = Field(
        default_factory=ReconnectConfig, description="Reconnect backoff and circuit breaker"
    )

    @model_validator(mode="after")
    def _password_needs_username(self) -> MqttConfig:
        if self.password is not None and self.username is None:
            raise ValueError("mqtt: password is set but username is not; set both")
        return self
