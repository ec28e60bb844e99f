"""The ingest thread: messages -> validated batches -> one transaction -> confirmations.

For each group of messages taken from the inbox:

1. validate every message (``validate_message``): an accepted batch or a dead letter;
2. write them all in one transaction (``collector.store.writer.write``); a database that
   is down is retried with jittered exponential backoff (tenacity) behind a circuit
   breaker (pybreaker), for as long as it takes: nothing is acknowledged meanwhile, so
   the broker keeps the messages and stops sending beyond its in-flight window;
3. publish a confirmation (``BatchAck``) to each sending agent: ``committed`` for the
   batches, ``rejected`` for dead letters that name their batch;
4. PUBACK the messages to the broker.

A crash between 2 and 4 means the broker sends the messages again: they are stored
once (the event store keys on the event id) and confirmed again. A group the database
refuses for its content (not a connection problem) is split, so one bad message becomes
a dead letter instead of blocking the others.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime

import psycopg
import pybreaker
from psycopg_pool import ConnectionPool, PoolTimeout
from tenacity import (
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    wait_exponential_jitter,
)

from collector.config import CollectorConfig
from collector.ingest.metrics import IngestMetrics
from collector.ingest.subscriber import Inbox, Received, Subscriber
from collector.ingest.validate import validate_message
from collector.records import AcceptedBatch, AckTarget, DeadLetter
from collector.store import UnstorableBatchError, WriteResult, write
from lineside_protocol import MAX_BATCH_BYTES, BatchAck, agent_ack_topic, encode_ack

log = logging.getLogger("lineside.collector.ingest")

TAKE_TIMEOUT_S = 0.5  # how often an idle ingest thread looks at the stop flag
BLOCKED_TICK_S = 1.0  # waiting on a commit: how often to show the thread is alive
STORE_REFUSED = "invalid_event"
"""Dead-letter reason when the database refuses a message the validator accepted."""

_CONNECTION_ERRORS = (psycopg.OperationalError, PoolTimeout, pybreaker.CircuitBreakerError)
# The database refused a value in what was written: retrying cannot help, so the batch
# becomes a dead letter. Only errors that name the data: a schema that does not match
# (ProgrammingError), a constraint (IntegrityError) or anything else unexpected is a
# deployment problem, retried like an outage with nothing acknowledged, so that no
# agent deletes events the collector could not store.
_CONTENT_ERRORS = (
    UnstorableBatchError,
    UnicodeEncodeError,  # a lone surrogate (valid JSON escape, not encodable as UTF-8)
    psycopg.DataError,
)
_RETRIED_ERRORS = (*_CONNECTION_ERRORS, psycopg.Error)


Stored = tuple[list[AcceptedBatch], list[DeadLetter]]
"""What a group's commit stored: batches, and dead letters (with batches the database
refused)."""


class _Stopping(Exception):
    """Raised inside a retry loop to give up because the collector stops."""


class IngestWorker:
    """Runs in its own thread: ``run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        config: CollectorConfig,
        pool: ConnectionPool,
        subscriber: Subscriber,
        inbox: Inbox,
        metrics: IngestMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.pool = pool
        self.subscriber = subscriber
        self.inbox = inbox
        self.metrics = metrics
        self.clock = clock
        ingest = config.ingest
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=ingest.breaker_fail_max,
            reset_timeout=ingest.breaker_reset_s,
            name="postgresql",
            exclude=list(_CONTENT_ERRORS),  # bad data is not a database outage
            listeners=[_FailureCounter(metrics)],
        )
        self.last_tick = time.monotonic()
        """Monotonic time of the last loop turn (liveness)."""
        self.db_ok = False
        self.last_db_error: str | None = None
        self.committed_events = 0

    # -- the loop --------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Ingest until ``stop`` is set.

        This thread validates; ``database.pool_size`` writer threads commit groups side
        by side (PostgreSQL works on one while Python prepares the next), and finished
        groups are confirmed and acknowledged strictly in the order they were received
        (MQTT wants PUBACKs in order). Groups committed before the stop are acknowledged;
        the others are left to the broker to send again.
        """
        ingest = self.config.ingest
        writers = self.config.database.pool_size
        inflight: deque[tuple[list[Received], Future[Stored]]] = deque()
        with ThreadPoolExecutor(writers, thread_name_prefix="lineside-writer") as executor:
            try:
                while not stop.is_set():
                    self.last_tick = time.monotonic()
                    if len(inflight) >= writers:
                        self._finish(inflight, block=True, stop=stop)
                        continue
                    messages = self.inbox.take(
                        ingest.max_events_per_commit,
                        ingest.max_wait_ms / 1000,
                        TAKE_TIMEOUT_S,
                        stop,
                    )
                    self._update_gauges()
                    if messages:
                        group = self.validate(messages)
                        future = executor.submit(self._commit, *group, stop)
                        # a finished commit wakes this thread to confirm it (no polling)
                        future.add_done_callback(lambda _done: self.inbox.wake())
                        inflight.append((messages, future))
                    self._finish(inflight, block=False, stop=stop)
                while inflight:  # stopping: acknowledge what gets committed
                    self._finish(inflight, block=True, stop=stop)
            except _Stopping:
                left = sum(len(messages) for messages, _ in inflight)
                log.info("event=ingest_stopped_uncommitted messages=%d", left)

    def _finish(
        self,
        inflight: deque[tuple[list[Received], Future[Stored]]],
        *,
        block: bool,
        stop: threading.Event,
    ) -> None:
        """Confirm and acknowledge the oldest groups that are committed (in order)."""
        while inflight and (block or inflight[0][1].done()):
            messages, future = inflight[0]
            while True:
                try:
                    batches, dead = future.result(timeout=BLOCKED_TICK_S)
                    break
                except FutureTimeout:
                    self.last_tick = time.monotonic()  # waiting on the database, not stuck
            inflight.popleft()
            self._confirm(batches, dead)
            self.subscriber.acknowledge(messages)
            self.committed_events += sum(len(batch.events) for batch in batches)
            block = False

    def handle(self, messages: list[Received], stop: threading.Event) -> None:
        """Validate, commit, confirm and acknowledge one group of messages (no pipelining)."""
        batches, dead = self._commit(*self.validate(messages), stop)
        self._confirm(batches, dead)
        self.subscriber.acknowledge(messages)
        self.committed_events += sum(len(batch.events) for batch in batches)

    def validate(
        self, messages: list[Received]
    ) -> tuple[list[tuple[Received, AcceptedBatch]], list[DeadLetter]]:
        """Each message as an accepted batch (with its message) or a dead letter."""
        accepted: list[tuple[Received, AcceptedBatch]] = []
        dead: list[DeadLetter] = []
        max_future_s = self.config.ingest.max_future_s
        for message in messages:
            received_at = datetime.fromtimestamp(message.received_at, UTC)
            outcome = validate_message(
                message.topic, message.payload, received_at, max_future_s=max_future_s
            )
            if isinstance(outcome, AcceptedBatch):
                accepted.append((message, outcome))
            else:
                dead.append(outcome)
        return accepted, dead

    # -- committing ------------------------------------------------------------------------

    def _commit(
        self,
        accepted: list[tuple[Received, AcceptedBatch]],
        dead: list[DeadLetter],
        stop: threading.Event,
    ) -> Stored:
        """Write until it succeeds; returns what was stored (refused batches moved to dead)."""
        batches = [batch for _, batch in accepted]
        try:
            self._write_with_retries(batches, dead, stop)
            return batches, dead
        except _CONTENT_ERRORS as error:
            if not batches:
                raise  # dead letters are bytes and text: refusing them is a bug, not data
            log.warning(
                "event=store_refused_group messages=%d error=%r action=split",
                len(batches) + len(dead),
                _first_line(error),
            )
        stored: list[AcceptedBatch] = []
        if dead:
            self._write_with_retries([], dead, stop)
        for message, batch in accepted:
            try:
                self._write_with_retries([batch], [], stop)
                stored.append(batch)
            except _CONTENT_ERRORS as error:
                letter = _refused_by_store(message, batch, error)
                log.warning(
                    "event=store_refused_batch batch_id=%s agent_id=%s error=%r",
                    batch.batch_id,
                    batch.agent_id,
                    letter.detail,
                )
                # kept whole (the contract accepted it): replayable once the cause is fixed
                self._write_with_retries([], [letter], stop, cap=MAX_BATCH_BYTES)
                dead.append(letter)
        return stored, dead

    def _write_with_retries(
        self,
        batches: Sequence[AcceptedBatch],
        dead: Sequence[DeadLetter],
        stop: threading.Event,
        *,
        cap: int | None = None,
    ) -> None:
        ingest = self.config.ingest
        retrying = Retrying(
            retry=retry_if_exception_type(_RETRIED_ERRORS)
            & retry_if_not_exception_type(_CONTENT_ERRORS),
            wait=wait_exponential_jitter(
                multiplier=ingest.retry_min_s, max=ingest.retry_max_s, jitter=ingest.retry_min_s
            ),
            sleep=lambda seconds: self._sleep_or_stop(seconds, stop),
            before_sleep=self._log_retry,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self._write_once(batches, dead, cap)

    def _write_once(
        self, batches: Sequence[AcceptedBatch], dead: Sequence[DeadLetter], cap: int | None
    ) -> None:
        started = time.perf_counter()
        if cap is None:
            cap = self.config.ingest.dead_letter_payload_bytes
        try:
            result = self._write_in_pool(batches, dead, cap)
        except _CONTENT_ERRORS:
            raise
        except _RETRIED_ERRORS as error:
            self.db_ok = False
            self.last_db_error = _first_line(error)
            self.metrics.db_up.set(0)
            self.metrics.breaker_open.set(1 if self.breaker.current_state == "open" else 0)
            if not isinstance(error, _CONNECTION_ERRORS):
                self.metrics.db_errors.inc()  # (connection failures count in the breaker)
                log.error(
                    "event=database_write_refused error=%r hint=%r action=retry",
                    self.last_db_error,
                    "a schema that does not match this collector? run oee-collector migrate",
                )
            raise
        elapsed = time.perf_counter() - started
        if not self.db_ok:
            log.info("event=database_available")
        self.db_ok, self.last_db_error = True, None
        metrics = self.metrics
        metrics.db_up.set(1)
        metrics.breaker_open.set(0)
        metrics.commit_seconds.observe(elapsed)
        events = sum(len(batch.events) for batch in batches)
        metrics.commit_events.observe(events)
        metrics.events.labels("inserted").inc(result.events_inserted)
        metrics.events.labels("duplicate").inc(result.duplicates_skipped)
        metrics.messages.labels("accepted").inc(len(batches))
        metrics.messages.labels("dead_letter").inc(len(dead))
        for letter in dead:
            metrics.dead_letters.labels(letter.reason).inc()

    def _write_in_pool(
        self, batches: Sequence[AcceptedBatch], dead: Sequence[DeadLetter], cap: int
    ) -> WriteResult:
        # The breaker guards getting a working connection (the pool checks it), not the
        # whole write: pybreaker holds a lock for the length of a call, which would make
        # the writer threads take turns.
        conn = self.breaker.call(self.pool.getconn)  # failures count in _FailureCounter
        try:
            return write(conn, batches, dead, payload_cap_bytes=cap)
        except _CONNECTION_ERRORS as error:  # the database went away during the write
            with contextlib.suppress(type(error), pybreaker.CircuitBreakerError):
                self.breaker.call(_raise, error)  # count it as the breaker's failure too
            raise
        finally:
            self.pool.putconn(conn)  # a broken connection is discarded by the pool

    def _sleep_or_stop(self, seconds: float, stop: threading.Event) -> None:
        """Back off (still alive: the tick moves), or give up when the collector stops."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self.last_tick = time.monotonic()
            if stop.wait(min(remaining, 1.0)):
                raise _Stopping
        self.last_tick = time.monotonic()

    def _log_retry(self, state: object) -> None:
        log.warning(
            "event=database_write_failed error=%r breaker=%s action=retry",
            self.last_db_error,
            self.breaker.current_state,
        )

    # -- confirmations ---------------------------------------------------------------------

    def _confirm(self, batches: list[AcceptedBatch], dead: list[DeadLetter]) -> None:
        now = datetime.now(UTC)
        for batch in batches:
            equipment = batch.equipment
            target = AckTarget(equipment.enterprise, equipment.site, batch.agent_id, batch.batch_id)
            self._publish_ack(target, now, "committed", None)
        for letter in dead:
            if letter.ack is not None:
                self._publish_ack(letter.ack, now, "rejected", f"{letter.reason}: {letter.detail}")

    def _publish_ack(
        self, target: AckTarget, now: datetime, status: str, detail: str | None
    ) -> None:
        ack = BatchAck(
            batch_id=target.batch_id,
            agent_id=target.agent_id,
            committed_at=now,
            status=status,
            detail=detail[:2000] if detail else None,
        )
        topic = agent_ack_topic(target.enterprise, target.site, target.agent_id)
        if self.subscriber.publish(topic, encode_ack(ack)):
            self.metrics.acks.labels(status).inc()
        else:
            self.metrics.ack_failures.inc()

    def _update_gauges(self) -> None:
        metrics = self.metrics
        metrics.inbox_messages.set(len(self.inbox))
        oldest = self.inbox.oldest_received_at()
        metrics.lag_seconds.set(0 if oldest is None else max(0.0, self.clock() - oldest))
        metrics.mqtt_connected.set(1 if self.subscriber.connected else 0)


class _FailureCounter(pybreaker.CircuitBreakerListener):
    """Counts attempts that reached for the database and failed (not calls the open
    breaker refused)."""

    def __init__(self, metrics: IngestMetrics) -> None:
        self.metrics = metrics

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self.metrics.db_errors.inc()


def _raise(error: BaseException) -> None:
    raise error


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def _refused_by_store(message: Received, batch: AcceptedBatch, error: BaseException) -> DeadLetter:
    """A batch the database refused for its content (e.g. a NUL character in a string,
    which PostgreSQL text and jsonb cannot hold) as a dead letter with a rejected ack."""
    equipment = batch.equipment
    return DeadLetter(
        topic=message.topic,
        payload=message.payload,
        reason=STORE_REFUSED,
        detail=f"the database refused the batch: {_first_line(error)}",
        received_at=datetime.fromtimestamp(message.received_at, UTC),
        ack=AckTarget(equipment.enterprise, equipment.site, batch.agent_id, batch.batch_id),
    )
