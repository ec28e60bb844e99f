"""The buffer's bounds: size and age drop the oldest events, counted and reported."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from _buffer_helpers import events_for, open_buffer, wait_until

from edge_agent.buffer import DroppedRange, _commit, _writer

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


class Drops:
    """Collects on_dropped calls (writer thread) for the test thread."""

    def __init__(self) -> None:
        self.ranges: list[DroppedRange] = []
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, ranges: list[DroppedRange]) -> None:
        with self._lock:
            self.ranges.extend(ranges)
            self.calls += 1

    def count(self) -> int:
        with self._lock:
            return sum(r.dropped_events for r in self.ranges)


def expected_ranges(dropped: list[dict], reason: str) -> dict[str, DroppedRange]:
    by_equipment: dict[str, list[dict]] = {}
    for event in dropped:
        by_equipment.setdefault(event["equipment"]["equipment"], []).append(event)
    return {
        equipment: DroppedRange(
            equipment=equipment,
            dropped_events=len(events),
            first_seq=events[0]["seq"],
            last_seq=events[-1]["seq"],
            first_event_time=events[0]["event_time"],
            last_event_time=events[-1]["event_time"],
            reason=reason,
        )
        for equipment, events in by_equipment.items()
    }


def test_over_max_bytes_the_oldest_events_are_dropped_and_reported(tmp_path: Path) -> None:
    # one commit of ~1.4 MiB into a 1 MiB buffer: one drop down to 95 % of max_bytes
    counts = {"press-1": 1500, "weld-1": 1000, "pack-1": 500}
    events = events_for(counts)
    sizes = [len(_commit.encode([[e]], 1, 0).rows[0][7]) for e in events]
    assert sum(sizes) > MIB
    low = int(MIB * _writer.LOW_WATERMARK)
    total, k = sum(sizes), 0
    while total > low:
        total -= sizes[k]
        k += 1
    drops = Drops()
    db = tmp_path / "buffer.db"
    with open_buffer(db, max_bytes=MIB, commit_interval_ms=1000, commit_max_events=10_000) as buf:
        buf.on_dropped = drops
        buf.submit(events)
        assert buf.flush()
        left = buf.read_after(0, 100_000)
        status = buf.status()
    assert [(e.equipment, e.seq) for e in left] == [
        (e["equipment"]["equipment"], e["seq"]) for e in events[k:]
    ]
    expected = expected_ranges(events[:k], "max_bytes")
    assert drops.calls == 1
    assert {r.equipment: r for r in drops.ranges} == expected
    assert status.bytes == total <= low
    assert status.depth_events == len(events) - k
    assert status.dropped_events_total == {eq: r.dropped_events for eq, r in expected.items()}
    with open_buffer(db, max_bytes=MIB) as reopened:  # the counters are kept in the file
        assert reopened.status().dropped_events_total == status.dropped_events_total
        assert reopened.status().bytes == status.bytes


def test_a_buffer_filled_over_many_commits_stays_bounded_and_drops_only_the_oldest(
    tmp_path: Path,
) -> None:
    # 200 commits of ~14 KB into 1 MiB: full after ~75, then 5 % (~52 KB) freed per drop
    drops = Drops()
    sent = 0
    with open_buffer(tmp_path / "buffer.db", max_bytes=MIB) as buffer:
        buffer.on_dropped = drops
        for batch in range(200):
            starts = {"press-1": 20 * batch, "weld-1": 10 * batch}
            buffer.submit(events_for({"press-1": 20, "weld-1": 10}, starts))
            sent += 30
            assert buffer.flush()
            assert buffer.status().bytes <= MIB
        left = buffer.read_after(0, 100_000)
        status = buffer.status()
    dropped = sent - len(left)
    assert dropped > 0
    assert drops.count() == dropped == sum(status.dropped_events_total.values())
    assert 10 < drops.calls < 60  # in chunks, not on each of the ~125 commits of a full buffer
    assert [e.rowid for e in left] == list(range(dropped + 1, sent + 1))  # a suffix
    for equipment in ("press-1", "weld-1"):
        ranges = [r for r in drops.ranges if r.equipment == equipment]
        kept = [e.seq for e in left if e.equipment == equipment]
        assert sum(r.dropped_events for r in ranges) == status.dropped_events_total[equipment]
        assert ranges[0].first_seq == 0
        assert ranges[-1].last_seq == kept[0] - 1


def test_events_older_than_max_age_are_dropped_at_start_and_reported_when_asked(
    tmp_path: Path,
) -> None:
    db = tmp_path / "buffer.db"
    old = events_for({"press-1": 6, "weld-1": 3})
    young = events_for({"press-1": 2}, {"press-1": 6})
    with open_buffer(db) as buffer:
        buffer.submit(old)
        assert buffer.flush()
    eight_days_ms = 8 * 24 * 3600 * 1000
    with sqlite3.connect(db) as conn:  # pretend the agent was off for eight days
        conn.execute("UPDATE events SET captured_ms = captured_ms - ?", (eight_days_ms,))
    drops = Drops()
    with open_buffer(db) as buffer:
        wait_until(lambda: buffer.status().depth_events == 0, timeout_s=5)
        buffer.submit(young)
        assert buffer.flush()
        buffer.on_dropped = drops  # set after the drop: delivered on the next tick
        wait_until(lambda: drops.count() == len(old), timeout_s=5)
        assert [(e.equipment, e.seq) for e in buffer.read_after(0, 100)] == [
            ("press-1", 6),
            ("press-1", 7),
        ]
        assert buffer.status().dropped_events_total == {"press-1": 6, "weld-1": 3}
    assert {r.equipment: r for r in drops.ranges} == expected_ranges(old, "max_age")


def test_a_short_max_age_drops_events_while_running(tmp_path: Path) -> None:
    drops = Drops()
    with open_buffer(tmp_path / "buffer.db", max_age_s=0.3) as buffer:
        buffer.on_dropped = drops
        buffer.submit(events_for({"press-1": 4}))
        assert buffer.flush()
        assert buffer.status().depth_events == 4
        wait_until(lambda: drops.count() == 4, timeout_s=5)
        assert buffer.status().depth_events == 0
        assert buffer.status().bytes == 0
    assert [r.reason for r in drops.ranges] == ["max_age"]


def test_failing_commits_keep_capture_alive_and_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_insert = _commit.insert
    failing = threading.Event()
    failing.set()

    def insert(conn: sqlite3.Connection, encoded: _commit.Encoded) -> None:
        if failing.is_set():
            raise sqlite3.OperationalError("disk I/O error")
        real_insert(conn, encoded)

    monkeypatch.setattr(_commit, "insert", insert)
    monkeypatch.setattr(_writer, "RETRY_S", (0.01,))
    with open_buffer(tmp_path / "buffer.db", commit_interval_ms=5) as buffer:
        started = time.perf_counter()
        buffer.submit(events_for({"press-1": 50}))
        assert time.perf_counter() - started < 0.05
        wait_until(lambda: not buffer.status().accepting, timeout_s=5)
        assert not buffer.flush(timeout_s=0.1)
        assert buffer.status().depth_events == 0
        failing.clear()
        assert buffer.flush(timeout_s=5)
        assert buffer.status().accepting
        assert [e.seq for e in buffer.read_after(0, 100)] == list(range(50))


def test_while_commits_fail_the_queue_drops_its_oldest_events_beyond_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = threading.Event()
    failing.set()
    real_insert = _commit.insert

    def insert(conn: sqlite3.Connection, encoded: _commit.Encoded) -> None:
        if failing.is_set():
            raise sqlite3.OperationalError("database or disk is full")
        real_insert(conn, encoded)

    monkeypatch.setattr(_commit, "insert", insert)
    monkeypatch.setattr(_writer, "RETRY_S", (0.01,))
    monkeypatch.setattr(_writer, "MAX_QUEUED_EVENTS", 100)
    drops = Drops()
    with open_buffer(tmp_path / "buffer.db", commit_interval_ms=5) as buffer:
        buffer.on_dropped = drops
        for start in range(0, 300, 30):
            buffer.submit(
                events_for({"press-1": 30}, {"press-1": start}), {"press-1": {"at": start}}
            )
        wait_until(lambda: drops.count() >= 200, timeout_s=5)
        failing.clear()
        assert buffer.flush(timeout_s=5)
        kept = [e.seq for e in buffer.read_after(0, 1000)]
        status = buffer.status()
    assert kept == list(range(300 - len(kept), 300))
    assert 0 < len(kept) <= 100
    assert drops.count() == 300 - len(kept) == status.dropped_events_total["press-1"]
    assert drops.ranges[0].first_seq == 0
    assert drops.ranges[-1].last_seq == kept[0] - 1
    assert {r.reason for r in drops.ranges} == {"max_bytes"}
    with open_buffer(tmp_path / "buffer.db") as reopened:
        assert reopened.load_snapshots() == {"press-1": {"at": 270}}
        assert reopened.status().dropped_events_total == {"press-1": 300 - len(kept)}


@pytest.mark.parametrize("where", ["file", "queue"])
def test_an_on_dropped_callback_may_submit_from_the_writer_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # the runner turns drops into buffer.overflowed events and submits them; doing so
    # straight from the callback must not deadlock on the writer's lock
    failing = threading.Event()
    if where == "queue":
        real_insert = _commit.insert

        def insert(conn: sqlite3.Connection, encoded: _commit.Encoded) -> None:
            if failing.is_set():
                raise sqlite3.OperationalError("disk I/O error")
            real_insert(conn, encoded)

        failing.set()
        monkeypatch.setattr(_commit, "insert", insert)
        monkeypatch.setattr(_writer, "RETRY_S", (0.01,))
        monkeypatch.setattr(_writer, "MAX_QUEUED_EVENTS", 100)
    reported = Drops()
    buffer = open_buffer(tmp_path / "buffer.db", max_bytes=MIB, commit_interval_ms=5)

    def on_dropped(ranges: list[DroppedRange]) -> None:
        buffer.submit(events_for({"overflow": 1}, {"overflow": reported.calls}))
        reported(ranges)

    buffer.on_dropped = on_dropped
    for start in range(0, 3000, 300):
        buffer.submit(events_for({"press-1": 300}, {"press-1": start}))
    wait_until(lambda: reported.calls > 0, timeout_s=10)
    failing.clear()
    # no `with`: after a deadlock close() would hang too; this way the test just fails
    wait_until(
        lambda: "overflow" in {e.equipment for e in buffer.read_after(0, 10_000)},
        timeout_s=10,
    )
    buffer.close()


def test_an_unexpected_error_in_a_commit_does_not_kill_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = _commit.save_snapshots
    calls = []

    def save_snapshots(*args: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("a bug")
        real_save(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_commit, "save_snapshots", save_snapshots)
    monkeypatch.setattr(_writer, "RETRY_S", (0.01,))
    with open_buffer(tmp_path / "buffer.db") as buffer:
        buffer.submit(events_for({"press-1": 3}), {"press-1": {"s": 1}})
        assert buffer.flush(timeout_s=5)
        assert buffer.status().accepting
        assert [e.seq for e in buffer.read_after(0, 10)] == [0, 1, 2]
    assert len(calls) == 2


def test_a_failed_commit_leaves_neither_its_events_nor_their_snapshots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "buffer.db"
    with open_buffer(db) as buffer:
        buffer.submit(events_for({"press-1": 3}), {"press-1": {"after": 3}})
        assert buffer.flush()

    def delete(conn: sqlite3.Connection, rowids: list[int]) -> tuple[int, int]:
        raise sqlite3.OperationalError("disk I/O error")  # after events and snapshots

    monkeypatch.setattr(_commit, "delete", delete)
    monkeypatch.setattr(_writer, "RETRY_S", (0.01,))
    buffer = open_buffer(db, commit_interval_ms=1000)
    buffer.delete([1])
    buffer.submit(events_for({"press-1": 2}, {"press-1": 3}), {"press-1": {"after": 5}})
    assert not buffer.flush(timeout_s=0.3)  # one group: delete, events, snapshot
    buffer.close()  # gives up on them
    monkeypatch.undo()
    with open_buffer(db) as reopened:
        assert reopened.load_snapshots() == {"press-1": {"after": 3}}
        assert [e.seq for e in reopened.read_after(0, 10)] == [0, 1, 2]
        assert reopened.next_sequences() == {"press-1": 3}
