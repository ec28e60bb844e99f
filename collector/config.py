"""The collector's YAML configuration (pydantic v2): broker, database, ingest, health.

Every field has a description: the models are the documented configuration schema
(``oee-collector schema``). Secrets (MQTT password, database URL) are ``SecretStr`` and
never printed; use ``${env:NAME}``/``${NAME}`` or ``${credential:NAME}`` references.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from collector.alerts.config import AlertsConfig
from collector.api.config import ApiConfig
from lineside_common.health_http import HealthEndpointConfig
from lineside_common.mqtt_tls import BrokerAddress, TlsConfig
from lineside_common.yamlconfig import (
    ConfigFileError,
    ConfigIssue,
    env_resolver,
    load_yaml,
    read_config_text,
    validate_document,
)

DATABASE_URL_ENV = "LINESIDE_DATABASE_URL"
UNKNOWN_KEY = "unknown key (check the spelling; see docs/operations.md for valid keys)"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class CollectorMqttConfig(BrokerAddress, _Section):
    """The broker the collector subscribes to (MQTT 5: shared subscriptions need it)."""

    host: str = Field("127.0.0.1", min_length=1, description="Broker host name or IP address")
    port: int | None = Field(
        None, ge=1, le=65535, description="Broker port; default 8883 with tls, else 1883"
    )
    client_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="MQTT client id, stable per collector process (the broker keeps its "
        "session and queued messages under it); default lineside-collector-<host name>. "
        "Several processes on one host need distinct ids (--client-id)",
    )
    group: str = Field(
        "lineside",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Shared subscription group: collectors in one group split the messages "
        "($share/<group>/lineside/v1/+/+/+/+/+/events)",
    )
    username: str | None = Field(None, description="Broker user name")
    password: SecretStr | None = Field(
        None, description="Broker password; use ${credential:NAME} or ${NAME}. Never logged"
    )
    tls: TlsConfig | None = Field(None, description="TLS settings; omit for plain TCP")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive in seconds")
    session_expiry_s: int = Field(
        86_400,
        ge=0,
        le=4_294_967_295,
        description="How long the broker keeps this collector's session (and the messages "
        "queued for it) while the collector is down",
    )
    receive_maximum: int = Field(
        200,
        ge=1,
        le=65_535,
        description="Most messages the broker sends before the collector acknowledges them "
        "(acknowledged only after they are committed); the broker's own max_inflight_messages "
        "also caps this",
    )

    def resolved_client_id(self) -> str:
        """``client_id`` or ``lineside-collector-<host name>``."""
        return self.client_id or f"lineside-collector-{socket.gethostname()}"[:64]

    @model_validator(mode="after")
    def _password_needs_username(self) -> CollectorMqttConfig:
        if self.password is not None and self.username is None:
            raise ValueError("mqtt: password is set but username is not; set both")
        return self


class DatabaseConfig(_Section):
    """The PostgreSQL database (found in this order: --dsn, $LINESIDE_DATABASE_URL, here)."""

    url: SecretStr | None = Field(
        None,
        description="libpq connection string or URL, e.g. postgresql://lineside@db/lineside; "
        "put a password in ${credential:NAME} or use a .pgpass file. Never logged",
    )
    pool_size: int = Field(
        3,
        ge=1,
        le=64,
        description="Connections per collector process: as many transactions are written "
        "side by side (PostgreSQL works on some while the collector prepares the next)",
    )
    connect_timeout_s: float = Field(10.0, gt=0, le=300, description="Timeout of one connect")
    reconnect_window_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="While the database is down the pool retries connecting with doubling "
        "delays for at most this long, then starts over at 1 s: bounds how late ingest "
        "resumes after a long outage",
    )
    migrate_on_start: bool = Field(
        True, description="Apply pending schema migrations when the collector starts"
    )


class IngestConfig(_Section):
    """How messages become transactions."""

    max_events_per_commit: int = Field(
        10_000,
        ge=1,
        le=200_000,
        description="Most events written in one transaction (messages are never split)",
    )
    max_wait_ms: int = Field(
        5,
        ge=0,
        le=10_000,
        description="How long the first message of a transaction may wait for more",
    )
    max_future_s: float = Field(
        600.0,
        gt=0,
        description="Events timestamped more than this ahead of the collector's clock are "
        "refused (dead letter): a line PC with a wrong clock",
    )
    dead_letter_payload_bytes: int = Field(
        65_536, ge=0, le=1_048_576, description="Most bytes of a refused payload kept"
    )
    retry_min_s: float = Field(0.5, gt=0, le=60, description="First wait after a database error")
    retry_max_s: float = Field(30.0, gt=0, le=3600, description="Longest wait between retries")
    breaker_fail_max: int = Field(
        5, ge=1, description="Database failures in a row that open the circuit breaker"
    )
    breaker_reset_s: float = Field(
        15.0, gt=0, description="How long the open breaker refuses writes before one trial"
    )


class PartitionsConfig(_Section):
    """Daily partitions of the event store and the historian."""

    ahead_days: int = Field(7, ge=1, le=366, description="Partitions created ahead of today")
    retention_days: int | None = Field(
        None,
        ge=1,
        description="Drop partitions entirely older than this many days; null keeps everything",
    )
    maintenance_interval_s: float = Field(
        3600.0, ge=60, description="How often partitions are created ahead and dropped"
    )


class OeeHoursConfig(_Section):
    """OEE hours computed ahead (lineside.oee_hours): long windows are then summed by
    PostgreSQL instead of recomputed from every state change. Answers are the same
    either way; only their speed differs."""

    enabled: bool = Field(True, description="Compute past days' OEE hours in the background")
    days_back: int = Field(
        62, ge=1, le=3660, description="How many past days are kept computed (per equipment)"
    )
    days_per_pass: int = Field(
        100,
        ge=1,
        le=100_000,
        description="Most equipment-days computed per pass (one takes ~7 ms; newest first)",
    )
    interval_s: float = Field(
        60.0,
        ge=5,
        le=86_400,
        description="Pause between passes (days changed by late "
        "events or new master data are computed again in the next pass)",
    )


class CollectorHealthConfig(HealthEndpointConfig):
    """The local HTTP endpoint: /healthz, /readyz, /status, /metrics."""

    listen: str = Field(
        "127.0.0.1:9109",
        description="host:port to listen on ([::1]:9109 for IPv6); no authentication, so "
        "keep it on loopback unless a firewall restricts who can reach it",
    )


class CollectorConfig(_Section):
    """The whole collector configuration file."""

    credentials_dir: Path | None = Field(
        None,
        description="Where ${credential:NAME} files are; default $CREDENTIALS_DIRECTORY "
        "(systemd LoadCredential=)",
    )
    mqtt: CollectorMqttConfig = Field(default_factory=CollectorMqttConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    partitions: PartitionsConfig = Field(default_factory=PartitionsConfig)
    health: CollectorHealthConfig = Field(default_factory=CollectorHealthConfig)
    masterdata_file: Path | None = Field(
        None,
        description="OEE master data: shift calendars, products, state classes "
        "(docs/masterdata.md); relative paths are relative to this file. Omit: 24/7, no "
        "product data, default classes. Reloaded when it changes",
    )
    api: ApiConfig = Field(default_factory=ApiConfig, description="The HTTP API")
    oee_hours: OeeHoursConfig = Field(
        default_factory=OeeHoursConfig, description="OEE hours computed ahead (speed only)"
    )
    alerts: AlertsConfig = Field(
        default_factory=AlertsConfig,
        description="Threshold alerts: rules, MQTT, webhooks (docs/alerts.md)",
    )


def load_collector_config(
    path: str | Path | None, environ: dict[str, str] | None = None
) -> CollectorConfig:
    """Load and validate ``path`` (None: every default); ConfigFileError lists every problem."""
    if path is None:
        return CollectorConfig()
    path = Path(path)
    text = read_config_text(path)
    env = dict(os.environ if environ is None else environ)
    document: Any = load_yaml(text, str(path))  # a small file: keep positions always
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigFileError(
            [ConfigIssue(str(path), 1, 1, "", "expected a mapping with mqtt, database, ...")]
        )
    credentials = document.get("credentials_dir")
    resolver = env_resolver(env, credentials if isinstance(credentials, str) else None)
    config = validate_document(
        CollectorConfig, document, str(path), {"extra_forbidden": UNKNOWN_KEY}, resolve=resolver
    )
    if config.masterdata_file is not None and not config.masterdata_file.is_absolute():
        config = config.model_copy(update={"masterdata_file": path.parent / config.masterdata_file})
    return config


def resolve_database_url(
    config: CollectorConfig, dsn: str | None, environ: dict[str, str] | None = None
) -> str | None:
    """The database to use: ``--dsn``, then $LINESIDE_DATABASE_URL, then the config file."""
    if dsn:
        return dsn
    env = os.environ if environ is None else environ
    if env.get(DATABASE_URL_ENV):
        return env[DATABASE_URL_ENV]
    return config.database.url.get_secret_value() if config.database.url else None
