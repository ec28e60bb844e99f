"""Point-in-time status of the running agent's parts (plain data, no I/O).

Each part of the agent (sources, buffer, forwarder) reports its own status object on
request; the service shell assembles an :class:`AgentStatus` and serves it as JSON
(``/status``), as Prometheus metrics (``/metrics``) and as readiness (``/readyz``).
Keeping these as plain dataclasses means the parts never import the HTTP or metrics
code: the arrows point from the shell down to the parts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

BreakerState = Literal["closed", "open", "half-open"]


@dataclass(slots=True)
class DeviceStatus:
    """One PLC link: an OPC UA connection, or one Modbus unit on a connection."""

    connection: str
    """Connection id from the config."""
    device: str
    """``"opcua"`` for an OPC UA connection, ``"unit-<id>"`` for a Modbus unit."""
    protocol: Literal["opcua", "modbus"]
    connected: bool
    breaker: BreakerState = "closed"
    last_round_trip_s: float | None = None
    read_errors_total: int = 0
    values_total: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class BufferStatus:
    """The SQLite store-and-forward buffer."""

    path: str
    durability: str
    accepting: bool
    """False only when the buffer cannot commit (disk error); full never blocks."""
    depth_events: int
    bytes: int
    max_bytes: int
    oldest_age_s: float | None
    captured_events_total: int
    """Events committed to the buffer since start."""
    dropped_events_total: dict[str, int] = field(default_factory=dict)
    """Events dropped by the size or age bound, per equipment, since the file was created."""
    commits_total: int = 0
    last_commit_s: float | None = None
    """Duration of the last group commit."""
    quarantined_files_total: int = 0
    """Corrupt buffer files moved aside at start."""


@dataclass(slots=True)
class ForwarderStatus:
    """The MQTT forwarder."""

    broker: str
    """``host:port`` (never credentials)."""
    connected: bool
    breaker: BreakerState
    ack_mode: Literal["collector", "broker"]
    published_batches_total: int = 0
    published_events_total: int = 0
    confirmed_events_total: int = 0
    """Events deleted from the buffer after a collector (or broker) confirmation."""
    resent_batches_total: int = 0
    rejected_batches_total: int = 0
    inflight_batches: int = 0
    backlog_events: int = 0
    """Events captured before the current broker session, still to be replayed."""
    last_confirmation_age_s: float | None = None
    last_error: str | None = None


@dataclass(slots=True)
class AgentStatus:
    agent_id: str
    version: str
    config_hash: str
    started_at: str
    """ISO 8601 UTC."""
    devices: list[DeviceStatus] = field(default_factory=list)
    buffer: BufferStatus | None = None
    forwarder: ForwarderStatus | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
