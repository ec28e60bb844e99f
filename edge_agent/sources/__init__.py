"""Sources read PLCs (OPC UA, Modbus) and emit raw samples and connection changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from edge_agent.samples import ConnectionChange, Sample

Emit = Callable[[list[Sample | ConnectionChange]], None]


class Source(Protocol):
    connection_id: str

    async def run(self, emit: Emit, stop: asyncio.Event) -> None: ...
