"""One session's work: poll and subscribe groups, watchdog and quarantine retries.

Built by :class:`~edge_agent.sources.opcua.source.OpcUaSource` for every new session
and thrown away with it. Any task that fails marks the session lost; ``serve`` then
returns why, and the source reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from edge_agent.config.models import PollSampling
from edge_agent.sources import Emit
from edge_agent.sources.opcua.errors import (
    EXPECTED_FAILURES,
    NamespaceUnknownError,
    describe,
)
from edge_agent.sources.opcua.points import TagPoint
from edge_agent.sources.opcua.polling import PollGroup
from edge_agent.sources.opcua.session import OpcUaSession
from edge_agent.sources.opcua.subscriptions import SubscribeGroup

if TYPE_CHECKING:
    from edge_agent.sources.opcua.source import OpcUaSource

log = logging.getLogger("lineside.agent.opcua")


class SessionRun:
    """The groups and tasks of one session, from setup to teardown."""

    def __init__(self, source: OpcUaSource, session: OpcUaSession, emit: Emit) -> None:
        self.source = source
        self.session = session
        self.emit = emit
        self.poll_groups: dict[float, PollGroup] = {}
        self.subscribe_groups: dict[float, SubscribeGroup] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._serving = False

    async def setup(self) -> None:
        """Retry every quarantined tag once, then resolve, group and subscribe the tags."""
        source = self.source
        await source.retry_quarantined(self.session, source.quarantine.due(all_=True))
        points: list[TagPoint] = []
        for point in source.active_points():
            try:
                point.node_id = point.ref.resolve(self.session.namespaces)
            except NamespaceUnknownError as exc:
                source.quarantine_point(self.emit, point, NamespaceUnknownError.status, str(exc))
                continue
            points.append(point)
        await self.add_points(points)

    async def add_points(self, points: list[TagPoint]) -> None:
        """Put resolved tags into their poll or subscribe group (creating groups)."""
        to_subscribe: dict[float, list[TagPoint]] = {}
        for point in points:
            sampling = point.tag.sampling
            if isinstance(sampling, PollSampling):
                group = self.poll_groups.get(sampling.interval_s)
                if group is None:
                    group = PollGroup(
                        sampling.interval_s, self.session, self.emit, self._quarantine
                    )
                    self.poll_groups[sampling.interval_s] = group
                    if self._serving:
                        self._spawn(group.run(), f"poll {sampling.interval_s:g}s")
                group.add(point)
            else:
                to_subscribe.setdefault(sampling.publishing_interval_s, []).append(point)
        for interval_s, members in to_subscribe.items():
            subscribe_group = self.subscribe_groups.get(interval_s)
            if subscribe_group is None:
                subscribe_group = SubscribeGroup(
                    interval_s,
                    self.session,
                    self.emit,
                    self._quarantine,
                    self.source.filter_refusals_logged,
                )
                await subscribe_group.create()
                self.subscribe_groups[interval_s] = subscribe_group
            await subscribe_group.add(members)

    def _quarantine(self, point: TagPoint, status: str) -> None:
        self.source.quarantine_point(self.emit, point, status)

    async def serve(self, stop: asyncio.Event) -> str | None:
        """Run until ``stop`` (returns None) or the session is lost (returns why)."""
        self._serving = True
        for group in self.poll_groups.values():
            self._spawn(group.run(), f"poll {group.interval_s:g}s")
        self._spawn(self._watchdog(), "watchdog")
        self._spawn(self._maintain(), "quarantine")
        stopped = asyncio.create_task(stop.wait())
        lost = asyncio.create_task(self.session.lost.wait())
        try:
            await asyncio.wait({stopped, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            tasks = [stopped, lost, *self._tasks]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.session.lost_reason if self.session.lost.is_set() else None

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"opcua {self.source.connection_id} {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if not isinstance(exc, EXPECTED_FAILURES):
            log.error(
                "event=opcua_task_failed connection=%s task=%r",
                self.source.connection_id,
                task.get_name(),
                exc_info=exc,
            )
        self.session.mark_lost(describe(exc))

    async def _watchdog(self) -> None:
        """Read the server's status every watchdog_interval_s; raise on silence/restart."""
        config = self.session.config
        interval_s = config.watchdog_interval_s
        while True:
            await asyncio.sleep(interval_s)
            started = time.monotonic()
            await self.session.check_alive(min(config.timeout_s, interval_s))
            self.source.last_round_trip_s = time.monotonic() - started

    async def _maintain(self) -> None:
        """Retry quarantined tags when due; delete monitored items of quarantined tags."""
        quarantine = self.source.quarantine
        while True:
            delay_s = quarantine.seconds_to_next_retry()
            await asyncio.sleep(max(0.05, quarantine.retry_s if delay_s is None else delay_s))
            for group in self.subscribe_groups.values():
                await group.delete_orphans()
            released = await self.source.retry_quarantined(self.session, quarantine.due())
            await self.add_points(released)
