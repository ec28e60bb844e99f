"""Poll groups: tags read together every ``interval_s``, chunked to the server's limit."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime

from asyncua import ua

from edge_agent.samples import ConnectionChange, Sample
from edge_agent.sources.opcua.errors import SessionLostError
from edge_agent.sources.opcua.points import TagPoint
from edge_agent.sources.opcua.session import OpcUaSession, read_parameters
from edge_agent.sources.opcua.values import is_quarantine_status, sample_of, status_name

log = logging.getLogger("lineside.agent.opcua")

Emit = Callable[[list[Sample | ConnectionChange]], None]
OnQuarantine = Callable[[TagPoint, str], None]


class PollGroup:
    """Reads its tags every ``interval_s`` on a drift-free schedule, skipping missed ticks.

    Chunks of ``session.max_nodes_per_read`` go out concurrently (the session limits
    requests in flight). A node answering with a quarantine status is handed to
    ``on_quarantine`` and dropped from the group; other statuses become samples.
    """

    def __init__(
        self,
        interval_s: float,
        session: OpcUaSession,
        emit: Emit,
        on_quarantine: OnQuarantine,
    ) -> None:
        self.interval_s = interval_s
        self._session = session
        self._emit = emit
        self._on_quarantine = on_quarantine
        self._points: dict[str, TagPoint] = {}
        # chunks with their Read parameters, built once: building ReadValueIds for every
        # node of every poll cost about 8% of the agent's CPU
        self._chunks: list[tuple[list[TagPoint], ua.ReadParameters]] | None = None
        self.skipped_ticks = 0

    def __len__(self) -> int:
        return len(self._points)

    def add(self, point: TagPoint) -> None:
        self._points[point.key] = point
        self._chunks = None

    def remove(self, key: str) -> None:
        if self._points.pop(key, None) is not None:
            self._chunks = None

    async def run(self) -> None:
        """Poll until cancelled; a failed Read request raises (the session is then rebuilt)."""
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            await self.read_all()
            next_tick += self.interval_s
            now = loop.time()
            if now > next_tick:  # the read overran: skip the ticks it covered
                missed = math.floor((now - next_tick) / self.interval_s) + 1
                self.skipped_ticks += missed
                next_tick += missed * self.interval_s
                log.debug(
                    "event=opcua_poll_ticks_skipped connection=%s interval_s=%g missed=%d",
                    self._session.connection_id,
                    self.interval_s,
                    missed,
                )
            await asyncio.sleep(next_tick - now)

    async def read_all(self) -> None:
        """Read every tag of the group once and emit the samples, chunk by chunk."""
        if self._chunks is None:
            points = list(self._points.values())
            size = self._session.max_nodes_per_read
            chunks = [points[i : i + size] for i in range(0, len(points), size)]
            self._chunks = [
                (chunk, read_parameters([p.node_id for p in chunk]))  # type: ignore[misc]
                for chunk in chunks
            ]
        if self._chunks:
            await asyncio.gather(*(self._read_chunk(*chunk) for chunk in self._chunks))

    async def _read_chunk(self, chunk: list[TagPoint], params: ua.ReadParameters) -> None:
        try:
            results = await self._session.read(params)
        except (TimeoutError, OSError, ua.UaError) as exc:
            raise SessionLostError(
                f"poll read of {len(chunk)} nodes failed: {type(exc).__name__} {exc}".rstrip()
            ) from None
        received = datetime.now(UTC)
        batch: list[Sample | ConnectionChange] = []
        for point, data in zip(chunk, results, strict=True):
            code = data.StatusCode.value if data.StatusCode is not None else 0
            if code and is_quarantine_status(code):
                self.remove(point.key)
                self._on_quarantine(point, status_name(code))
                continue
            batch.append(sample_of(point.key, data, received))
        if batch:
            self._emit(batch)
