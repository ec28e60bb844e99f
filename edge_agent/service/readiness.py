"""Readiness of the agent from its status (pure): may the line rely on it right now?

Ready means every PLC link is up and events have somewhere to go: the broker is
connected, or (while it is not) the buffer still accepts events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_agent.status import AgentStatus


@dataclass(frozen=True, slots=True)
class Readiness:
    """The verdict and, when not ready, one reason per problem."""

    ready: bool
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The /readyz body: ``{"ready": bool, "reasons": [...]}``."""
        return {"ready": self.ready, "reasons": list(self.reasons)}


def readiness(status: AgentStatus) -> Readiness:
    """Decide readiness: all devices connected AND (broker connected OR buffer accepting).

    An agent whose sources have not reported any device yet is not ready.
    """
    reasons: list[str] = []
    if not status.devices:
        reasons.append("no devices reported yet (sources not started)")
    for device in status.devices:
        if not device.connected:
            cause = device.last_error or "no error reported"
            reasons.append(f"device {device.connection}/{device.device} disconnected: {cause}")

    forwarder, buffer = status.forwarder, status.buffer
    broker_up = forwarder is not None and forwarder.connected
    buffer_up = buffer is not None and buffer.accepting
    if not (broker_up or buffer_up):
        if forwarder is None:
            reasons.append("forwarder not started")
        else:
            cause = forwarder.last_error or "no error reported"
            reasons.append(f"broker {forwarder.broker} disconnected: {cause}")
        if buffer is None:
            reasons.append("buffer not open")
        else:
            reasons.append(f"buffer {buffer.path} not accepting events")
    return Readiness(ready=not reasons, reasons=reasons)
