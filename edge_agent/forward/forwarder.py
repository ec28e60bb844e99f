"""The MQTT forwarder's shell: connection, wake-ups, status message and graceful stop.

:meth:`Forwarder.run` connects (tenacity backoff with jitter around a pybreaker circuit
breaker), announces ``online`` (retained; ``offline`` is the last will), then runs
:meth:`Delivery.pump` whenever something happened: the buffer committed (its commit
listener hands over thread-safely), a confirmation freed room, a deadline came, or the
connection dropped. Between rounds it sleeps on an ``asyncio.Event`` with a timeout set
to the next deadline: never a busy loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial

import pybreaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from edge_agent.forward._link import MqttLink
from edge_agent.forward.batching import LocationLike
from edge_agent.forward.buffer_api import EventSource
from edge_agent.forward.config import MqttConfig
from edge_agent.forward.delivery import Delivery
from edge_agent.forward.errors import BrokerConnectError
from edge_agent.status import BreakerState, ForwarderStatus
from lineside_common.malloctune import keep_large_buffers_in_heap
from lineside_protocol import (
    AgentPresence,
    AgentStatusMessage,
    agent_ack_topic,
    agent_status_topic,
    encode_status,
    utc_now,
)

log = logging.getLogger("lineside.agent.mqtt")

STATUS_PUBACK_WAIT_S = 1.0  # at stop, at least this long for the 'offline' PUBACK


class Forwarder:
    """Forwards the buffer's events to the broker and deletes them once confirmed."""

    def __init__(
        self,
        config: MqttConfig,
        buffer: EventSource,
        agent_id: str,
        location: LocationLike,
        version: str,
        config_hash: str,
    ) -> None:
        self._config = config
        self._buffer = buffer
        self._agent_id = agent_id
        self._version = version
        self._config_hash = config_hash
        self._ack_topic = agent_ack_topic(location.enterprise, location.site, agent_id)
        self._status_topic = agent_status_topic(location.enterprise, location.site, agent_id)
        self._link = MqttLink(
            config, config.client_id or agent_id, self._on_message, self._on_puback, self._on_lost
        )
        self._delivery = Delivery(
            config, buffer, agent_id, location, self._link.publish, self._wake_up
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._wake_pending = False
        self._status_mids: set[int] = set()
        self._backlog_estimate = 0

    # ---- public face ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a broker session is up."""
        return self._link.connected

    def status(self) -> ForwarderStatus:
        """A snapshot of counters and state (cheap; safe to call from another thread)."""
        delivery = self._delivery
        last = delivery.last_confirmation
        return ForwarderStatus(
            broker=self._config.broker,
            connected=self._link.connected,
            breaker=_breaker_state(self._link.breaker),
            ack_mode=self._config.ack_mode,
            published_batches_total=delivery.published_batches,
            published_events_total=delivery.published_events,
            confirmed_events_total=delivery.confirmed_events,
            resent_batches_total=delivery.resent_batches,
            rejected_batches_total=delivery.rejected_batches,
            inflight_batches=len(delivery.window),
            backlog_events=self._backlog_estimate,
            last_confirmation_age_s=None if last is None else time.monotonic() - last,
            last_error=self._link.last_error or delivery.last_error,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Forward until ``stop`` is set, then stop gracefully (bounded by stop_timeout_s)."""
        keep_large_buffers_in_heap()  # batch messages are ~250 KB each: no mmap per message
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._buffer.add_commit_listener(self._on_commit)
        relay = asyncio.create_task(self._relay_stop(stop))
        delivery = self._delivery
        try:
            while not stop.is_set():
                if not self._link.connected:
                    if not await self._connect(stop):
                        break
                    continue
                self._wake.clear()
                more = await delivery.pump()
                self._backlog_estimate = delivery.backlog_events()
                if not more:
                    await self._sleep_until(delivery.next_wake(time.monotonic()))
            await self._stop_gracefully()
        finally:
            delivery.closed = True
            delivery.connected = False
            relay.cancel()
            self._link.close()

    # ---- connecting -------------------------------------------------------------------

    async def _connect(self, stop: asyncio.Event) -> bool:
        """Connect with backoff until it works (True) or ``stop`` is set (False)."""
        backoff = self._config.reconnect
        retrying = AsyncRetrying(
            wait=wait_exponential_jitter(
                multiplier=backoff.min_backoff_s,
                max=backoff.max_backoff_s,
                jitter=backoff.min_backoff_s,
            ),
            retry=retry_if_exception_type((BrokerConnectError, pybreaker.CircuitBreakerError)),
            stop=lambda _state: stop.is_set(),
            sleep=partial(_stopped_within, stop),
            before_sleep=self._log_retry,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if stop.is_set():
                        return False
                    self._link.will_set(self._status_topic, self._status_payload("offline"))
                    session_present = await self._link.connect()
        except RetryError:
            return False
        await self._on_connected(session_present)
        return True

    def _log_retry(self, state: RetryCallState) -> None:
        wait_s = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "mqtt connect failed broker=%s attempt=%d retry_in_s=%.1f breaker=%s error=%r",
            self._config.broker,
            state.attempt_number,
            wait_s,
            _breaker_state(self._link.breaker),
            self._link.last_error,
        )

    async def _on_connected(self, session_present: bool) -> None:
        if self._config.ack_mode == "collector":
            self._link.subscribe(self._ack_topic)
        self._publish_status("online")
        boundary = await asyncio.to_thread(self._buffer.last_rowid)
        delivery = self._delivery
        delivery.session_started(
            boundary, session_present, time.monotonic(), self._link.inflight_limit
        )
        self._backlog_estimate = delivery.backlog_events()
        log.info(
            "mqtt connected broker=%s protocol=%s client_id=%s session_present=%s "
            "inflight_batches=%d backlog_events=%d",
            self._config.broker,
            self._config.protocol,
            self._config.client_id or self._agent_id,
            session_present,
            len(delivery.window),
            self._backlog_estimate,
        )

    def _status_payload(self, status: AgentPresence) -> bytes:
        message = AgentStatusMessage(
            agent_id=self._agent_id,
            status=status,
            version=self._version,
            config_hash=self._config_hash,
            at=utc_now(),
        )
        return encode_status(message)

    def _publish_status(self, status: AgentPresence) -> int | None:
        mid, refused = self._link.publish(
            self._status_topic, self._status_payload(status), retain=True
        )
        if mid is None:
            log.warning("mqtt status not published status=%s error=%r", status, refused)
        else:
            self._status_mids.add(mid)
        return mid

    # ---- callbacks (event loop thread) ------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self._ack_topic:
            self._delivery.on_ack(payload)

    def _on_puback(self, mid: int, failed: bool, reason: str) -> None:
        if mid in self._status_mids:
            self._status_mids.discard(mid)
            if failed:
                log.warning("mqtt status refused by broker reason=%s", reason)
            self._wake_up()
            return
        self._delivery.on_puback(mid, failed, reason)

    def _on_lost(self, reason: str, expected: bool) -> None:
        self._delivery.connected = False
        if not expected:
            log.warning(
                "mqtt connection lost broker=%s reason=%s inflight_batches=%d",
                self._config.broker,
                reason,
                len(self._delivery.window),
            )
        self._wake_up()

    def _on_commit(self, rowid: int) -> None:
        """Commit listener: runs on the buffer's writer thread."""
        self._delivery.committed_rowid = rowid
        loop = self._loop
        if self._wake_pending or self._delivery.closed or loop is None:
            return
        self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
            loop.call_soon_threadsafe(self._wake_up)

    def _wake_up(self) -> None:
        self._wake_pending = False
        if self._wake is not None:
            self._wake.set()

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake_up()

    async def _sleep_until(self, wake_at: float) -> None:
        """Sleep until woken or ``wake_at``. A timer that sets the wake-up event, rather
        than ``asyncio.wait_for``: no task per round (a drain sleeps several times per
        batch)."""
        wake, loop = self._wake, self._loop
        assert wake is not None
        assert loop is not None
        if wake.is_set():
            return
        timer = loop.call_later(max(0.0, wake_at - time.monotonic()), wake.set)
        try:
            await wake.wait()
        finally:
            timer.cancel()

    async def _wait_for(self, done: Callable[[], bool], deadline: float) -> bool:
        """Sleep on wake-ups until ``done()`` or the deadline; returns ``done()``."""
        assert self._wake is not None
        while not done() and self._link.connected and time.monotonic() < deadline:
            self._wake.clear()
            await self._sleep_until(deadline)
        return bool(done())

    # ---- stopping ---------------------------------------------------------------------

    async def _stop_gracefully(self) -> None:
        """Wait (bounded) for confirmations, publish 'offline', disconnect."""
        if not self._link.connected:
            return
        delivery = self._delivery
        deadline = time.monotonic() + self._config.stop_timeout_s
        delivery.flush_live(time.monotonic())
        await self._wait_for(lambda: not len(delivery.window), deadline)
        unconfirmed = len(delivery.window)
        mid = self._publish_status("offline")
        if mid is not None:
            status_deadline = max(deadline, time.monotonic() + STATUS_PUBACK_WAIT_S)
            await self._wait_for(lambda: mid not in self._status_mids, status_deadline)
        self._link.disconnect()
        await self._wait_for(lambda: not self._link.connected, time.monotonic() + 1.0)
        log.info(
            "mqtt stopped broker=%s unconfirmed_batches=%d (their events stay buffered)",
            self._config.broker,
            unconfirmed,
        )


def _breaker_state(breaker: pybreaker.CircuitBreaker) -> BreakerState:
    state = str(breaker.current_state)
    if state == "open":
        return "open"
    return "half-open" if state == "half-open" else "closed"


async def _stopped_within(stop: asyncio.Event, seconds: float) -> None:
    """Sleep up to ``seconds``, returning early when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
