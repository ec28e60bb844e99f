"""The forwarder's engine (Delivery) with an in-memory buffer and a fake publish: no broker."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace

import orjson

from edge_agent.buffer import BufferedEvent
from edge_agent.forward import MqttConfig
from edge_agent.forward.delivery import Delivery
from lineside_protocol import BatchAck, decode_batch, encode_ack, new_event_id

LOCATION = SimpleNamespace(enterprise="acme", site="plant-1", area="pressing", line="line-3")


class MemoryBuffer:
    """Just enough of EventBuffer for the engine: ordered rows, read_after, delete."""

    def __init__(self) -> None:
        self.rowids: list[int] = []
        self.rows: dict[int, BufferedEvent] = {}
        self.next_rowid = 1
        self.remember_recent = False  # True: read_recent serves, as EventBuffer's memory
        self.file_reads = 0

    def add(self, equipment: str, count: int) -> list[int]:
        added = []
        for seq in range(count):
            event = {
                "schema_version": 1,
                "event_id": new_event_id(),
                "type": "tag.sampled",
                "agent_id": "agent-7",
                "equipment": {**vars(LOCATION), "equipment": equipment},
                "seq": seq,
                "event_time": "2026-01-05T08:00:02.000Z",
                "received_time": "2026-01-05T08:00:02.050Z",
                "payload": {"tag": "t", "value": 1, "quality": "good", "status": "Good"},
            }
            rowid = self.next_rowid
            self.next_rowid += 1
            self.rows[rowid] = BufferedEvent(rowid, equipment, seq, 0, orjson.dumps(event))
            self.rowids.append(rowid)
            added.append(rowid)
        return added

    def add_commit_listener(self, listener: Callable[[int], None]) -> None:
        pass

    def read_after(self, rowid: int, limit: int) -> list[BufferedEvent]:
        self.file_reads += 1
        return self._after(rowid, limit)

    def _after(self, rowid: int, limit: int) -> list[BufferedEvent]:
        start = bisect.bisect_right(self.rowids, rowid)
        return [self.rows[r] for r in self.rowids[start : start + limit]]

    def read_recent(self, rowid: int, limit: int) -> list[BufferedEvent] | None:
        return self._after(rowid, limit) if self.remember_recent else None

    def first_rowid(self) -> int:
        return self.rowids[0] if self.rowids else 0

    def last_rowid(self) -> int:
        return self.rowids[-1] if self.rowids else 0

    def delete(self, rowids: Sequence[int]) -> None:
        for rowid in rowids:
            if self.rows.pop(rowid, None) is not None:
                self.rowids.remove(rowid)


class Published:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> tuple[int | None, str]:
        self.messages.append((topic, payload))
        return len(self.messages), ""

    def batches(self) -> list:
        return [decode_batch(payload) for _topic, payload in self.messages]


def engine(
    buffer: MemoryBuffer, wake: asyncio.Event | None = None, **config: object
) -> tuple[Delivery, Published]:
    """A Delivery over ``buffer``; its wake-ups set ``wake``."""
    settings = {"host": "b", "backlog_events_per_s": None, **config}
    published = Published()
    wake_up = wake.set if wake is not None else lambda: None
    delivery = Delivery(
        MqttConfig.model_validate(settings), buffer, "agent-7", LOCATION, published, wake_up
    )
    return delivery, published


async def sleep_until_due(delivery: Delivery, wake: asyncio.Event) -> None:
    """What the shell does between rounds: sleep until woken or the next deadline."""
    timeout = max(0.0, delivery.next_wake(time.monotonic()) - time.monotonic())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout)
    wake.clear()


async def settle(delivery: Delivery, rounds: int = 20) -> None:
    """Pump until the background backlog read and its publishing are done."""
    for _ in range(rounds):
        await delivery.pump()
        await asyncio.sleep(0.005)


def ack(batch_id: str, status: str = "committed") -> bytes:
    return encode_ack(
        BatchAck(
            batch_id=batch_id,
            agent_id="agent-7",
            committed_at=datetime.now(UTC),
            status=status,  # type: ignore[arg-type]
        )
    )


async def test_backlog_leaves_window_room_for_live_events() -> None:
    buffer = MemoryBuffer()
    buffer.add("press-1", 100)
    delivery, published = engine(buffer, max_inflight_batches=4, batch={"max_events": 10})
    delivery.session_started(buffer.last_rowid(), False, time.monotonic())
    await settle(delivery)
    assert len(published.messages) == 3  # 4 slots, one kept for live events
    assert all(event.historical for b in published.batches() for event in b.events)
    live = buffer.add("press-2", 5)
    delivery.committed_rowid = live[-1]
    await settle(delivery)
    assert len(published.messages) == 4
    newest = published.batches()[-1]
    assert newest.equipment.equipment == "press-2"
    assert [event.historical for event in newest.events] == [False] * 5
    assert delivery.backlog_events() == 70


async def test_an_ack_deletes_and_frees_room_and_a_rejected_ack_too() -> None:
    buffer = MemoryBuffer()
    buffer.add("press-1", 30)
    delivery, published = engine(buffer, max_inflight_batches=1, batch={"max_events": 10})
    delivery.session_started(buffer.last_rowid(), True, time.monotonic())
    await settle(delivery)
    first, = published.batches()  # fmt: skip
    delivery.on_ack(ack(first.batch_id))
    assert len(buffer.rowids) == 20
    delivery.on_ack(ack(first.batch_id))  # a duplicate ack changes nothing
    await settle(delivery)
    second = published.batches()[1]
    delivery.on_ack(ack(second.batch_id, "rejected"))
    assert len(buffer.rowids) == 10
    assert (delivery.confirmed_events, delivery.rejected_batches) == (20, 1)


async def test_unacked_batch_is_published_again_after_its_puback_and_timeout() -> None:
    buffer = MemoryBuffer()
    buffer.add("press-1", 5)
    delivery, published = engine(buffer, ack_timeout_s=0.05)
    delivery.session_started(buffer.last_rowid(), True, time.monotonic())
    await settle(delivery, rounds=3)
    assert len(published.messages) == 1
    await asyncio.sleep(0.1)
    await delivery.pump()
    assert len(published.messages) == 1  # no PUBACK yet: paho still owns the message
    delivery.on_puback(1, False, "Success")
    await asyncio.sleep(0.1)
    await delivery.pump()
    assert len(published.messages) == 2
    assert published.messages[0] == published.messages[1]  # same bytes, same batch_id
    assert delivery.resent_batches == 1


async def test_broker_mode_confirms_on_puback() -> None:
    buffer = MemoryBuffer()
    buffer.add("press-1", 5)
    delivery, _published = engine(buffer, ack_mode="broker")
    delivery.session_started(buffer.last_rowid(), True, time.monotonic())
    await settle(delivery, rounds=3)
    delivery.on_puback(1, False, "Success")
    assert buffer.rowids == []
    assert delivery.confirmed_events == 5


async def test_backlog_pace_follows_the_token_bucket() -> None:
    buffer = MemoryBuffer()
    buffer.add("press-1", 1000)
    wake = asyncio.Event()
    delivery, published = engine(
        buffer, wake, backlog_events_per_s=500, max_inflight_batches=100, batch={"max_events": 100}
    )
    delivery.session_started(buffer.last_rowid(), True, time.monotonic())
    started = time.monotonic()
    await settle(delivery, rounds=5)
    first = sum(len(batch.events) for batch in published.batches())
    assert first == 500  # the burst: one second's worth
    while sum(len(b.events) for b in published.batches()) < 700:
        await delivery.pump()
        await sleep_until_due(delivery, wake)
    assert 0.35 <= time.monotonic() - started < 3.0  # 200 more at 500/s need 0.4 s


async def test_a_reconnect_turns_what_came_meanwhile_into_backlog() -> None:
    buffer = MemoryBuffer()
    buffer.add("press-1", 10)
    delivery, published = engine(buffer, batch={"max_events": 100, "linger_ms": 0})
    delivery.session_started(buffer.last_rowid(), True, time.monotonic())
    await settle(delivery, rounds=3)
    live = buffer.add("press-1", 3)
    delivery.committed_rowid = live[-1]
    await settle(delivery, rounds=3)
    delivery.connected = False  # the connection drops; events keep coming
    offline = buffer.add("press-1", 4)
    delivery.session_started(buffer.last_rowid(), True, time.monotonic())
    await settle(delivery, rounds=3)
    flags = [(b.events[0].seq, b.events[0].historical, len(b.events)) for b in published.batches()]
    assert flags == [(0, True, 10), (0, False, 3), (0, True, 4)]
    assert delivery.live_cursor == offline[-1]


async def test_a_full_window_sleeps_instead_of_spinning() -> None:
    buffer = MemoryBuffer()
    buffer.add("press-1", 20_000)
    delivery, published = engine(buffer, max_inflight_batches=1, batch={"max_events": 10})
    delivery.session_started(buffer.last_rowid(), True, time.monotonic())
    await settle(delivery)
    assert len(published.messages) == 1
    assert delivery.backlog.pending_events >= 5000  # read ahead, waiting for window room
    now = time.monotonic()
    assert delivery.next_wake(now) - now > 0.5  # only a confirmation (or the poll) wakes it


async def test_publishes_awaiting_puback_stay_below_the_brokers_receive_maximum() -> None:
    buffer = MemoryBuffer()
    buffer.add("press-1", 100)
    delivery, published = engine(buffer, max_inflight_batches=20, batch={"max_events": 10})
    delivery.session_started(buffer.last_rowid(), True, time.monotonic(), inflight_limit=4)
    await settle(delivery)
    assert len(published.messages) == 3  # one slot of 4 stays free for the status message
    delivery.on_puback(1, False, "Success")
    await settle(delivery)
    assert len(published.messages) == 4
    assert delivery.window.awaiting_puback == 3


async def test_live_events_come_from_the_buffers_memory_when_it_has_them() -> None:
    buffer = MemoryBuffer()
    delivery, published = engine(buffer, batch={"linger_ms": 0})
    delivery.session_started(buffer.last_rowid(), True, time.monotonic())
    buffer.remember_recent = True
    delivery.committed_rowid = buffer.add("press-1", 7)[-1]
    await settle(delivery, rounds=2)
    assert buffer.file_reads == 0
    buffer.remember_recent = False  # e.g. the reader fell behind the memory
    delivery.committed_rowid = buffer.add("press-1", 3)[-1]
    await settle(delivery, rounds=2)
    assert buffer.file_reads == 1
    assert [len(batch.events) for batch in published.batches()] == [7, 3]
    assert [e.seq for b in published.batches() for e in b.events] == [*range(7), *range(3)]


async def test_the_window_holds_at_most_about_max_inflight_bytes() -> None:
    buffer = MemoryBuffer()
    buffer.add("press-1", 2000)  # ~330 bytes each
    delivery, published = engine(
        buffer,
        max_inflight_batches=1000,
        max_inflight_bytes=256 * 1024,
        batch={"max_events": 10, "max_bytes": 4096},
    )
    delivery.session_started(0, True, time.monotonic())
    delivery.committed_rowid = buffer.last_rowid()  # all of it live: the whole window
    for _ in range(30):
        await delivery.pump()
        for mid in range(1, len(published.messages) + 1):
            delivery.on_puback(mid, False, "Success")  # the broker has them; no acks yet
    sizes = [len(payload) for _topic, payload in published.messages]
    assert sum(sizes[:-1]) < 256 * 1024 <= sum(sizes)
    assert delivery.window.bytes == sum(sizes)
