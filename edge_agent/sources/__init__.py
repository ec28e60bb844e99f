"""Sources read PLCs (OPC UA, Modbus) and emit raw samples and connection changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from edge_agent.samples import ConnectionChange, Sample
from edge_agent.status import DeviceStatus

Emit = Callable[[list[Sample | ConnectionChange]], None]


class Source(Protocol):
    connection_id: str

    async def run(self, emit: Emit, stop: asyncio.Event) -> None: ...

    def status(self) -> list[DeviceStatus]:
        """Link state per device (cheap; called from the health server's thread)."""
        ...
