"""OpcUaSource: the OPC UA implementation of the Source protocol.

One source per OPC UA connection. ``run`` keeps a session open for as long as ``stop``
is not set: it connects (retrying with jittered exponential backoff), polls and
subscribes the tags, watches the server, and on any sign of trouble (watchdog read
failed or timed out, server restarted, connection or session lost) emits one
``ConnectionChange(connected=False)``, tears the session down and builds a new one,
re-resolving ``nsu=`` node ids against the new session's namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import pybreaker
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from edge_agent.config.models import Connection, Tag
from edge_agent.samples import ConnectionChange
from edge_agent.sources import Emit
from edge_agent.sources.opcua.errors import (
    EXPECTED_FAILURES,
    LoginRejectedError,
    NamespaceUnknownError,
    OpcUaSourceError,
    ServerTrustError,
    describe,
)
from edge_agent.sources.opcua.nodeids import parse_node_id
from edge_agent.sources.opcua.points import TagPoint
from edge_agent.sources.opcua.quarantine import Quarantine
from edge_agent.sources.opcua.session import OpcUaSession, open_session
from edge_agent.sources.opcua.session_run import SessionRun
from edge_agent.sources.opcua.values import bad_sample, is_quarantine_status
from edge_agent.status import BreakerState, DeviceStatus

log = logging.getLogger("lineside.agent.opcua")


class OpcUaSource:
    """Reads ``tags`` (``(sample name, Tag)`` pairs) over one OPC UA ``connection``."""

    def __init__(
        self,
        connection: Connection,
        tags: list[tuple[str, Tag]],
        agent_id: str,
        data_dir: Path,
        *,
        quarantine_retry_s: float = 60.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        breaker_fail_max: int = 5,
        breaker_reset_s: float = 5.0,  # short: a returning server is resumed within 15 s
    ) -> None:
        if connection.opcua is None:
            raise OpcUaSourceError(f"connection {connection.id!r} is not an OPC UA connection")
        self.connection_id = connection.id
        self.config = connection.opcua
        self.agent_id = agent_id
        self.data_dir = data_dir
        self.quarantine = Quarantine(quarantine_retry_s)
        self.last_error = ""
        self.last_round_trip_s: float | None = None
        """Duration of the watchdog's last Read of the server's clock."""
        self._backoff = (backoff_initial_s, backoff_max_s)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=breaker_fail_max,
            reset_timeout=breaker_reset_s,
            exclude=[asyncio.CancelledError],
            throw_new_error_on_trip=False,
            name=f"{connection.id}/opcua",
        )
        self._connected: bool | None = None
        self.filter_refusals_logged: set[str] = set()
        self._points: dict[str, TagPoint] = {}
        for key, tag in tags:
            if not isinstance(tag.address, str):
                raise OpcUaSourceError(f"tag {key!r}: an OPC UA address is a node id string")
            if key in self._points:
                raise OpcUaSourceError(f"tag {key!r} is configured twice")
            self._points[key] = TagPoint(key, tag, parse_node_id(tag.address))

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Read until ``stop`` is set; never raises for connection trouble."""
        log.info(
            "event=opcua_source_started connection=%s endpoint=%s tags=%d",
            self.connection_id,
            self.config.endpoint,
            len(self._points),
        )
        while not stop.is_set():
            run = await self._establish(emit, stop)
            if run is None:
                break
            reason: str | None = None
            try:
                reason = await run.serve(stop)
            finally:
                if reason is not None:  # report first: closing a dead session takes a while
                    self._disconnected(emit, reason)
                await run.session.close(graceful=reason is None)
        log.info("event=opcua_source_stopped connection=%s", self.connection_id)

    def status(self) -> list[DeviceStatus]:
        """The connection's link state (cheap; safe to call from another thread).

        The breaker guards opening a session (per-request failures end the session
        and go through the same path).
        """
        connected = self._connected is True
        return [
            DeviceStatus(
                connection=self.connection_id,
                device="opcua",
                protocol="opcua",
                connected=connected,
                breaker=_BREAKER_STATES.get(str(self.breaker.current_state), "closed"),
                last_round_trip_s=self.last_round_trip_s,
                last_error=None if connected else (self.last_error or "not connected yet"),
            )
        ]

    # -- connecting ---------------------------------------------------------------------

    async def _establish(self, emit: Emit, stop: asyncio.Event) -> SessionRun | None:
        """Open a session and set it up, retrying with backoff; None once ``stop`` is set."""
        initial_s, max_s = self._backoff

        async def sleep_unless_stopped(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s),
            stop=lambda _state: stop.is_set(),
            sleep=sleep_unless_stopped,
            before_sleep=self._log_retry,
            reraise=True,
        )
        run: SessionRun | None = None
        try:
            async for attempt in retrying:
                with attempt:
                    if stop.is_set():
                        return None
                    run = await self._attempt(emit)
        except Exception:
            return None  # only reached once stop is set
        return run

    async def _attempt(self, emit: Emit) -> SessionRun:
        try:
            # The breaker opens after repeated failures: attempts then fail fast (no
            # socket, no TLS handshake) until its reset time, besides tenacity's backoff.
            with self.breaker.calling():
                session = await open_session(
                    self.connection_id, self.config, self.agent_id, self.data_dir
                )
        except pybreaker.CircuitBreakerError:
            raise
        except Exception as exc:
            self._disconnected(emit, f"cannot connect to {self.config.endpoint}: {describe(exc)}")
            raise
        self._set_connected(emit, True, "")
        run = SessionRun(self, session, emit)
        try:
            await run.setup()
        except BaseException as exc:
            await session.close(graceful=False)
            if isinstance(exc, Exception):
                self._disconnected(emit, f"session setup failed: {describe(exc)}")
            raise
        return run

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait_s = state.next_action.sleep if state.next_action is not None else 0.0
        level = logging.WARNING
        if isinstance(exc, pybreaker.CircuitBreakerError):
            level = logging.DEBUG  # the failures that opened it were logged
        elif exc is not None and (
            isinstance(exc, ServerTrustError | LoginRejectedError)
            or not isinstance(exc, EXPECTED_FAILURES)
        ):
            level = logging.ERROR  # needs a person: a trust decision, a login or a bug
        if state.attempt_number > 1:
            level = logging.DEBUG  # once per outage is enough; the detail is in ConnectionChange
        log.log(
            level,
            "event=opcua_connect_failed connection=%s attempt=%d retry_in_s=%.1f error=%s",
            self.connection_id,
            state.attempt_number,
            wait_s,
            describe(exc) if exc is not None else "",
        )

    def _set_connected(self, emit: Emit, connected: bool, detail: str) -> None:
        if self._connected is connected:
            return
        self._connected = connected
        emit([ConnectionChange(self.connection_id, connected, datetime.now(UTC), detail)])
        log.log(
            logging.INFO if connected else logging.WARNING,
            "event=opcua_%s connection=%s detail=%s",
            "connected" if connected else "disconnected",
            self.connection_id,
            detail or "-",
        )

    def _disconnected(self, emit: Emit, detail: str) -> None:
        self.last_error = detail
        self._set_connected(emit, False, detail)

    # -- quarantine ---------------------------------------------------------------------

    def quarantine_point(self, emit: Emit, point: TagPoint, status: str, detail: str = "") -> None:
        """Report ``point`` BAD once and keep it out of reads until a retry succeeds."""
        point.node_id = None
        if not self.quarantine.add(point.key, status):
            return
        emit([bad_sample(point.key, status, datetime.now(UTC))])
        log.warning(
            "event=opcua_tag_quarantined connection=%s tag=%s node=%s status=%s retry_s=%g%s",
            self.connection_id,
            point.key,
            point.ref.text,
            status,
            self.quarantine.retry_s,
            f" detail={detail!r}" if detail else "",
        )

    async def retry_quarantined(self, session: OpcUaSession, keys: list[str]) -> list[TagPoint]:
        """Try quarantined tags again; return those whose node works now (released)."""
        if not keys:
            return []
        namespaces = await session.read_namespaces()
        candidates: list[TagPoint] = []
        for key in keys:
            point = self._points[key]
            try:
                point.node_id = point.ref.resolve(namespaces)
            except NamespaceUnknownError:
                self.quarantine.postpone(key)
                continue
            candidates.append(point)
        released: list[TagPoint] = []
        size = session.max_nodes_per_read
        for start in range(0, len(candidates), size):
            chunk = candidates[start : start + size]
            results = await session.read_values([p.node_id for p in chunk])  # type: ignore[misc]
            for point, data in zip(chunk, results, strict=True):
                code = data.StatusCode.value if data.StatusCode is not None else 0
                if code and is_quarantine_status(code):
                    self.quarantine.postpone(point.key)
                    point.node_id = None
                    continue
                self.quarantine.release(point.key)
                released.append(point)
                log.info(
                    "event=opcua_tag_restored connection=%s tag=%s node=%s",
                    self.connection_id,
                    point.key,
                    point.ref.text,
                )
        return released

    def active_points(self) -> list[TagPoint]:
        return [p for p in self._points.values() if p.key not in self.quarantine]


_BREAKER_STATES: dict[str, BreakerState] = {
    pybreaker.STATE_CLOSED: "closed",
    pybreaker.STATE_OPEN: "open",
    pybreaker.STATE_HALF_OPEN: "half-open",
}
