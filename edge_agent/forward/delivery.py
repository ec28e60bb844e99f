"""What to send next, what to send again, what to delete: the forwarder's engine.

:class:`Delivery` owns the two lanes, the backlog ranges and their token bucket, and
the window of unconfirmed batches. The forwarder's shell calls :meth:`Delivery.pump`
whenever something happened and sleeps until :meth:`Delivery.next_wake` otherwise; it
passes in confirmations (:meth:`on_ack`, :meth:`on_puback`). Buffer reads run in worker
threads; everything else here runs on the event loop thread.

Reading: live events are read as soon as a commit is announced (from the buffer's memory
of its latest commits when it goes on from the live cursor), and sent after at most
``linger_ms``. The backlog is read ahead in chunks by one background read at a time,
while its not yet published events stay under a fixed bound; so memory is bounded by
that bound plus the window, and a full window simply stops the reading (the buffer is
the queue). Publishing: at most ``max_inflight_batches`` unconfirmed batches and about
``max_inflight_bytes`` of them (a quarter of both kept for live events) and fewer
publishes awaiting a PUBACK than the broker's Receive Maximum. A batch sent again keeps
its ``batch_id`` and its bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial

from edge_agent.forward.batching import LocationLike, Targets, encode_batch_payload
from edge_agent.forward.buffer_api import BufferedEventLike, EventSource
from edge_agent.forward.config import MqttConfig
from edge_agent.forward.lanes import BacklogRanges, Lane, SealedBatch, TokenBucket
from edge_agent.forward.window import InflightBatch, Window
from lineside_protocol import ProtocolError, decode_ack, new_event_id

log = logging.getLogger("lineside.agent.mqtt")

LIVE_READ_LIMIT = 5_000
BACKLOG_READ_LIMIT = 5_000
BACKLOG_OPEN_MAX = 50_000  # backlog events grouped in memory (~25 MB), waiting to fill batches
# Read-ahead bound (open + sealed, not yet published). Batches of many equipment fill
# together (100 equipment x 500 events: every 50,000 rows), so the reads of the next
# wave must go on while the sealed one is published, or the window runs dry meanwhile.
BACKLOG_AHEAD_MAX = BACKLOG_OPEN_MAX + 2 * BACKLOG_READ_LIMIT
BACKLOG_TAIL_MAX_AGE_S = 1.0  # a backlog batch waits at most this long for more events
PUBLISH_RETRY_S = 1.0  # paho did not take a publish (queue full): try again after this
READ_RETRY_S = 1.0  # a buffer read failed: try again after this
IDLE_POLL_S = 1.0  # safety net; commits and confirmations normally wake the pump
EVENT_BYTES = 512  # a typical stored event, to turn a byte bound into an event count

Publish = Callable[[str, bytes], "tuple[int | None, str]"]


class Delivery:
    """Lanes, backlog, window and confirmations for one agent."""

    def __init__(
        self,
        config: MqttConfig,
        buffer: EventSource,
        agent_id: str,
        location: LocationLike,
        publish: Publish,
        wake: Callable[[], None],
    ) -> None:
        self._config = config
        self._buffer = buffer
        self._agent_id = agent_id
        self._publish = publish
        self._wake = wake
        self.connected = False
        batch = config.batch
        self._max_events = batch.max_events
        self._linger_s = batch.linger_ms / 1000
        targets = Targets(agent_id, location)
        self.live = Lane(False, batch.max_events, batch.max_bytes, targets)
        self.backlog = Lane(True, batch.max_events, batch.max_bytes, targets)
        self.ranges = BacklogRanges()
        self.window = Window(config.max_inflight_batches, config.max_inflight_bytes)
        # the quarter of the window the backlog leaves to live events
        self._backlog_cap = max(1, config.max_inflight_batches - config.max_inflight_batches // 4)
        self._backlog_cap_bytes = config.max_inflight_bytes - config.max_inflight_bytes // 4
        # live events read and not yet published: about as many bytes as the window holds
        self._live_pending_max = max(batch.max_events, config.max_inflight_bytes // EVENT_BYTES)
        rate = config.backlog_events_per_s
        self._bucket = TokenBucket(rate, max(float(batch.max_events), rate or 0.0), 0.0)
        self.live_cursor = 0
        self.committed_rowid = 0
        self._reading: asyncio.Future[list[BufferedEventLike]] | None = None
        self._read_retry_at = 0.0
        self._puback_limit = 19
        self.closed = False
        # counters, read by status() from other threads: plain ints only
        self.published_batches = 0
        self.published_events = 0
        self.confirmed_events = 0
        self.resent_batches = 0
        self.rejected_batches = 0
        self.unsendable_events = 0
        self.last_confirmation: float | None = None
        self.last_error: str | None = None

    # ---- sessions -----------------------------------------------------------------------

    def session_started(
        self, boundary: int, session_present: bool, now: float, inflight_limit: int = 20
    ) -> None:
        """A broker session began; rows up to ``boundary`` (last committed) are backlog.

        ``inflight_limit``: most batch publishes without PUBACK (the broker's Receive
        Maximum, one slot left for the status message).
        """
        self.connected = True
        self._puback_limit = max(1, inflight_limit - 1)
        if boundary > self.live_cursor:
            self.ranges.add(self.live_cursor, boundary)
            self.live_cursor = boundary
        self.committed_rowid = max(self.committed_rowid, boundary)
        if not session_present:
            self.window.expire_all(now)  # acks the broker queued for us are gone

    def backlog_events(self) -> int:
        """Events still to replay (an estimate: rowid ranges plus events read ahead)."""
        return self.ranges.remaining_estimate() + self.backlog.pending_events

    # ---- the pump -----------------------------------------------------------------------

    async def pump(self) -> bool:
        """One round; True when there is more to do right away."""
        now = time.monotonic()
        for batch in self.window.due(now):
            if self.window.awaiting_puback >= self._puback_limit:
                break  # a PUBACK wakes the pump again
            self._send_again(batch, now)
        more = False
        live = self.live
        if self.committed_rowid > self.live_cursor and live.pending_events < self._live_pending_max:
            rows = await self._read_live()
            now = time.monotonic()
            if rows:
                self.live_cursor = rows[-1].rowid
                self._drop_unsendable(live.add(rows, now))
                more = len(rows) >= LIVE_READ_LIMIT
        live.seal_opened_before(now - self._linger_s)
        self._publish_ready(live, self.window.max_batches, self.window.max_bytes, now)
        self._pump_backlog(now)
        return more and self.connected

    async def _read_live(self) -> Sequence[BufferedEventLike]:
        """The next live events: from the buffer's memory of its latest commits, else
        from the file in a worker thread."""
        rows = self._buffer.read_recent(self.live_cursor, LIVE_READ_LIMIT)
        if rows is not None:
            return rows
        try:
            return await asyncio.to_thread(
                self._buffer.read_after, self.live_cursor, LIVE_READ_LIMIT
            )
        except Exception as error:  # a failing disk: keep what is buffered, retry later
            self._read_failed(error)
            return []

    def _pump_backlog(self, now: float) -> None:
        lane = self.backlog
        lane.seal_opened_before(now - BACKLOG_TAIL_MAX_AGE_S)
        self._publish_ready(lane, self._backlog_cap, self._backlog_cap_bytes, now)
        if not self._may_read_backlog() or now < self._read_retry_at:
            return
        if lane.open_events >= BACKLOG_OPEN_MAX:
            lane.seal_all()  # many equipment: send smaller batches rather than hold more
            self._publish_ready(lane, self._backlog_cap, self._backlog_cap_bytes, now)
            return
        limit = int(min(self._bucket.available(now), BACKLOG_READ_LIMIT))
        if limit < min(self._max_events, BACKLOG_READ_LIMIT):
            return  # the token bucket says wait; next_wake knows until when
        after = self.ranges.next_read()
        self._reading = asyncio.ensure_future(
            asyncio.to_thread(self._buffer.read_after, after, limit)
        )
        self._reading.add_done_callback(partial(self._backlog_read_done, limit))

    def _may_read_backlog(self) -> bool:
        """Backlog is left and the read-ahead has room (pace and retry delay aside)."""
        return (
            self._reading is None
            and bool(self.ranges)
            and self.backlog.pending_events < BACKLOG_AHEAD_MAX
        )

    def _backlog_read_done(self, limit: int, reading: asyncio.Future) -> None:
        self._reading = None
        if self.closed or reading.cancelled():
            return
        error = reading.exception()
        if error is not None:
            self._read_failed(error)
            return
        now = time.monotonic()
        inside = self.ranges.take(reading.result(), limit)
        self._bucket.take(len(inside), now)
        lane = self.backlog
        self._drop_unsendable(lane.add(inside, now))
        if not self.ranges:
            lane.seal_all()  # the backlog is read completely: send the rest now
        self._wake()

    def _read_failed(self, error: BaseException) -> None:
        self.last_error = f"reading the buffer failed: {error}"
        self._read_retry_at = time.monotonic() + READ_RETRY_S
        log.error("mqtt buffer read failed error=%r", error)

    def next_wake(self, now: float) -> float:
        """When the next round is due if nothing wakes the pump earlier."""
        candidates = [now + IDLE_POLL_S]
        opened = self.live.oldest_open_at()
        if opened is not None:
            candidates.append(opened + self._linger_s)
        opened = self.backlog.oldest_open_at()
        if opened is not None:
            candidates.append(opened + BACKLOG_TAIL_MAX_AGE_S)
        deadline = self.window.next_deadline()
        if deadline is not None and self.window.awaiting_puback < self._puback_limit:
            candidates.append(deadline)
        if self._may_read_backlog():  # (a full read-ahead waits for a confirmation instead)
            wanted = min(self._max_events, BACKLOG_READ_LIMIT)
            due = now + self._bucket.seconds_until(wanted, now)
            candidates.append(max(due, self._read_retry_at))
        return min(candidates)

    def flush_live(self, now: float) -> None:
        """Send every live event read so far (stopping: no more linger)."""
        self.live.seal_all()
        self._publish_ready(self.live, self.window.max_batches, self.window.max_bytes, now)

    # ---- publishing ---------------------------------------------------------------------

    def _publish_ready(self, lane: Lane, cap: int, cap_bytes: int, now: float) -> None:
        window = self.window
        while (
            lane.ready
            and len(window) < cap
            and window.bytes < cap_bytes
            and window.awaiting_puback < self._puback_limit
            and self.connected
        ):
            self._send_new(lane.take_ready(), now)

    def _send_new(self, sealed: SealedBatch, now: float) -> None:
        batch_id = new_event_id()
        payload = encode_batch_payload(
            sealed.target, batch_id, _wire_now(), sealed.bodies, sealed.historical
        )
        batch = InflightBatch(
            batch_id, sealed.target.topic, payload, sealed.rowids, sealed.historical, now
        )
        self._send(batch, now)
        self.published_batches += 1
        self.published_events += len(sealed.rowids)

    def _send_again(self, batch: InflightBatch, now: float) -> None:
        if not self.connected:
            return
        self.resent_batches += 1
        log.info(
            "mqtt batch resent batch_id=%s events=%d sends=%d",
            batch.batch_id,
            len(batch.rowids),
            batch.sends + 1,
        )
        self._send(batch, now)

    def _send(self, batch: InflightBatch, now: float) -> None:
        mid, refused = self._publish(batch.topic, batch.payload)
        if mid is not None:
            self.window.sent(batch, mid, now + self._config.ack_timeout_s)
            return
        # not taken (MQTT_ERR_QUEUE_SIZE, ...): keep it in the window, try again shortly
        self.window.sent(batch, None, now + PUBLISH_RETRY_S)
        self.last_error = f"publish refused by the MQTT client: {refused}"
        log.warning("mqtt publish refused batch_id=%s error=%r", batch.batch_id, refused)

    def _drop_unsendable(self, events: Sequence[BufferedEventLike]) -> None:
        if not events:
            return
        self.unsendable_events += len(events)
        for event in events:
            log.error(
                "mqtt event dropped rowid=%d equipment=%s seq=%d bytes=%d reason=%s",
                event.rowid,
                event.equipment,
                event.seq,
                len(event.body),
                "its equipment path is not a valid topic level or it exceeds 1 MiB alone",
            )
        self._buffer.delete([event.rowid for event in events])
        self.last_error = f"{self.unsendable_events} unsendable events dropped (see log)"

    # ---- confirmations --------------------------------------------------------------------

    def on_ack(self, payload: bytes) -> None:
        """A message on the agent's acks topic: the collector confirmed (or rejected) a batch."""
        try:
            ack = decode_ack(payload)
        except ProtocolError as error:
            log.warning("mqtt ack unreadable reason=%s error=%s", error.reason, error.message)
            return
        if ack.agent_id != self._agent_id:
            log.warning("mqtt ack for another agent agent_id=%s", ack.agent_id)
            return
        batch = self.window.pop(ack.batch_id)
        if batch is None:
            return  # a duplicate ack, or one for a batch confirmed before a restart
        if ack.status == "rejected":
            self.rejected_batches += 1
            log.warning(
                "mqtt batch rejected by the collector batch_id=%s events=%d detail=%r",
                ack.batch_id,
                len(batch.rowids),
                ack.detail,
            )
        self._confirmed(batch)

    def on_puback(self, mid: int, failed: bool, reason: str) -> None:
        """The broker's PUBACK for one of our batch publishes."""
        batch = self.window.on_puback(mid)
        if batch is None:
            return
        self._wake()  # room for another publish
        if failed:
            self.window.puback_failed(batch, time.monotonic() + PUBLISH_RETRY_S * 5)
            self.last_error = f"broker refused batch {batch.batch_id}: {reason}"
            log.warning(
                "mqtt publish refused by broker batch_id=%s reason=%s", batch.batch_id, reason
            )
        elif self._config.ack_mode == "broker":
            self.window.pop(batch.batch_id)
            self._confirmed(batch)

    def _confirmed(self, batch: InflightBatch) -> None:
        self._buffer.delete(batch.rowids)
        self.confirmed_events += len(batch.rowids)
        self.last_confirmation = time.monotonic()
        self._wake()


def _wire_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
