"""What sources hand to the deriver: raw tag samples and connection changes.

Plain frozen dataclasses, shared by every source (OPC UA, Modbus) and the pure
``edge_agent.derive`` core. Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple


class Quality(StrEnum):
    """Quality of a sample, reduced to the three OPC UA severities."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class Sample(NamedTuple):
    """One value of one tag as a source read it.

    A NamedTuple rather than a frozen dataclass: sources create one per value read
    (50k+ a second), and a tuple is built several times faster.
    """

    tag: str
    """Tag id, unique within the agent, e.g. ``"press-1.state"``."""
    value: Any
    """Decoded, scaled Python value (int, float, bool or str); None when bad."""
    quality: Quality
    status: str
    """The source's status text: ``"Good"``, ``"BadSensorFailure"``, ``"ModbusException(4)"``."""
    source_ts: datetime | None
    """PLC source timestamp (OPC UA), aware UTC; None when the protocol has none (Modbus)."""
    server_ts: datetime | None
    received_ts: datetime
    """When the agent received the value, aware UTC."""

    @property
    def event_time(self) -> datetime:
        """When the value changed on the PLC if known, else when it was received."""
        return self.source_ts or self.received_ts


@dataclass(frozen=True, slots=True)
class ConnectionChange:
    """A source lost (``connected=False``) or regained its connection to a PLC."""

    connection: str
    """Connection id."""
    connected: bool
    at: datetime
    """Aware UTC."""
    detail: str = ""
