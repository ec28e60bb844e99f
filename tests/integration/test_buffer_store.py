"""EventBuffer against a real SQLite file: commit, read, delete, reopen, group commits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest
from _buffer_helpers import body_of, events_for, open_buffer, wait_until, wire_event

from edge_agent.buffer import (
    BufferConfig,
    BufferedEvent,
    BufferLockedError,
    EventBuffer,
    EventBufferError,
)
from lineside_protocol import EVENT_ADAPTER

pytestmark = pytest.mark.integration


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "buffer.db"


def test_committed_events_are_read_in_submit_order_with_exact_bodies(db: Path) -> None:
    events = events_for({"press-1": 30, "weld-1": 20})
    with open_buffer(db) as buffer:
        buffer.submit(events[:17])
        buffer.submit(events[17:])
        assert buffer.flush()
        first = buffer.read_after(0, 10)
        rest = buffer.read_after(first[-1].rowid, 1000)
        assert buffer.first_rowid() == first[0].rowid
        assert buffer.last_rowid() == rest[-1].rowid
    read = first + rest
    assert [e.rowid for e in read] == sorted(e.rowid for e in read)
    assert len({e.rowid for e in read}) == len(events)
    for got, sent in zip(read, events, strict=True):
        assert isinstance(got, BufferedEvent)
        assert got.body == orjson.dumps(sent)
        assert got.body.startswith(b"{")
        assert b'"historical"' not in got.body
        assert (got.equipment, got.seq) == (sent["equipment"]["equipment"], sent["seq"])
        EVENT_ADAPTER.validate_json(got.body)
    assert read[0].captured_ms == pytest.approx(time.time() * 1000, abs=60_000)


def test_empty_buffer_reports_zero_rowids(db: Path) -> None:
    with open_buffer(db) as buffer:
        assert (buffer.first_rowid(), buffer.last_rowid()) == (0, 0)
        assert buffer.read_after(0, 10) == []
        assert buffer.status().depth_events == 0
        assert buffer.status().oldest_age_s is None


def test_delete_removes_only_the_given_rows_and_keeps_the_order(db: Path) -> None:
    events = events_for({"press-1": 10, "weld-1": 10})
    with open_buffer(db) as buffer:
        buffer.submit(events)
        assert buffer.flush()
        rows = buffer.read_after(0, 100)
        gone = [rows[0].rowid, rows[5].rowid, rows[6].rowid, 10_000]  # an unknown id is ignored
        buffer.delete(gone)
        buffer.delete([rows[5].rowid])  # a second ack of the same row is harmless
        assert buffer.flush()
        left = buffer.read_after(0, 100)
        assert [e.rowid for e in left] == [r.rowid for r in rows if r.rowid not in gone]
        assert buffer.first_rowid() == rows[1].rowid
        status = buffer.status()
        assert status.depth_events == len(events) - 3
        assert status.bytes == sum(len(e.body) for e in left)


def test_rowids_are_never_reused_even_after_the_buffer_drained(db: Path) -> None:
    with open_buffer(db) as buffer:
        buffer.submit(events_for({"press-1": 5}))
        assert buffer.flush()
        drained = buffer.last_rowid()
        buffer.delete([e.rowid for e in buffer.read_after(0, 100)])
        assert buffer.flush()
        assert buffer.last_rowid() == 0
    with open_buffer(db) as buffer:
        buffer.submit([wire_event("press-1", 5)])
        assert buffer.flush()
        assert buffer.first_rowid() == drained + 1


def test_commit_listener_gets_the_highest_committed_rowid(db: Path) -> None:
    seen: list[tuple[int, int]] = []
    with open_buffer(db) as buffer:
        buffer.add_commit_listener(
            lambda rowid: seen.append((rowid, buffer.read_after(rowid - 1, 1)[0].rowid))
        )
        buffer.submit(events_for({"press-1": 3}))
        assert buffer.flush()
        buffer.submit(events_for({"press-1": 4}, {"press-1": 3}))
        assert buffer.flush()
        buffer.delete([1])
        assert buffer.flush()  # a delete-only commit does not call listeners
        last = buffer.last_rowid()
    assert [rowid for rowid, _ in seen] == [3, 7]
    assert all(rowid == visible for rowid, visible in seen)  # committed when announced
    assert last == 7


def test_read_recent_gives_what_read_after_gives_once_committed(db: Path) -> None:
    with open_buffer(db) as buffer:
        assert buffer.read_recent(0, 10) is None  # nothing committed by this process yet
        buffer.submit(events_for({"press-1": 30, "weld-1": 20}))
        assert buffer.flush()
        assert buffer.read_recent(0, 1000) == buffer.read_after(0, 1000)
        assert buffer.read_recent(10, 5) == buffer.read_after(10, 5)
        assert buffer.read_recent(3, 5) is None  # forgotten: the reader was past 10
        buffer.submit(events_for({"press-1": 4}, {"press-1": 30}))
        assert buffer.flush()
        assert buffer.read_recent(50, 100) == buffer.read_after(50, 100)
        assert [e.rowid for e in buffer.read_recent(50, 100) or []] == [51, 52, 53, 54]
        assert buffer.read_recent(54, 100) is None  # nothing newer: read_after says []


def test_events_dropped_by_a_bound_are_not_offered_from_memory(tmp_path: Path) -> None:
    config = BufferConfig(path=tmp_path / "b.db", max_bytes=1024 * 1024)
    buffer = EventBuffer.open(config, tmp_path / "unused.db")
    try:
        buffer.submit(events_for({"press-1": 1500}))  # ~700 KB
        assert buffer.flush()
        assert buffer.read_recent(0, 10) is not None
        buffer.submit(events_for({"press-1": 1500}, {"press-1": 1500}))  # over 1 MiB
        assert buffer.flush()
        assert buffer.status().dropped_events_total
        assert buffer.read_recent(0, 10) is None
        assert buffer.read_after(0, 1)[0].rowid > 1
    finally:
        buffer.close()


def test_a_failing_listener_does_not_stop_the_writer(db: Path) -> None:
    def broken(_rowid: int) -> None:
        raise ValueError("listener bug")

    with open_buffer(db) as buffer:
        buffer.add_commit_listener(broken)
        buffer.submit(events_for({"press-1": 2}))
        assert buffer.flush()
        buffer.submit(events_for({"press-1": 2}, {"press-1": 2}))
        assert buffer.flush()
        assert buffer.status().depth_events == 4


def test_sequences_and_snapshots_survive_a_reopen(db: Path) -> None:
    with open_buffer(db) as buffer:
        assert buffer.next_sequences() == {}
        assert buffer.load_snapshots() == {}
        buffer.submit(events_for({"press-1": 4, "weld-1": 2}), {"press-1": {"state": "idle"}})
        buffer.submit(events_for({"press-1": 3}, {"press-1": 4}), {"press-1": {"state": "run"}})
        buffer.submit([], {"weld-1": {"counter": {"total": 12}}})
        assert buffer.flush()
    with open_buffer(db) as buffer:
        assert buffer.next_sequences() == {"press-1": 7, "weld-1": 2}
        assert buffer.load_snapshots() == {
            "press-1": {"state": "run"},
            "weld-1": {"counter": {"total": 12}},
        }
        assert buffer.status().depth_events == 9


def test_next_sequence_follows_the_highest_seq_not_the_last_submitted(db: Path) -> None:
    with open_buffer(db) as buffer:
        buffer.submit([wire_event("press-1", 9), wire_event("press-1", 4)])
        assert buffer.flush()
    with open_buffer(db) as buffer:
        assert buffer.next_sequences() == {"press-1": 10}
        buffer.submit([wire_event("press-1", 2)])  # never moves the stored number back
        assert buffer.flush()
    with open_buffer(db) as buffer:
        assert buffer.next_sequences() == {"press-1": 10}


def test_a_group_commit_starts_when_commit_max_events_are_queued(db: Path) -> None:
    with open_buffer(db, commit_interval_ms=1000, commit_max_events=10) as buffer:
        started = time.monotonic()
        buffer.submit(events_for({"press-1": 10}))
        wait_until(lambda: buffer.status().depth_events == 10, timeout_s=0.8)
        assert time.monotonic() - started < 0.8


def test_a_group_commit_starts_after_commit_interval_without_flush(db: Path) -> None:
    with open_buffer(db, commit_interval_ms=20) as buffer:
        buffer.submit([wire_event("press-1", 0)])
        wait_until(lambda: buffer.last_rowid() == 1, timeout_s=2.0)
        assert buffer.status().commits_total == 1


def test_many_small_submits_are_grouped_into_few_commits(db: Path) -> None:
    with open_buffer(db, commit_interval_ms=200) as buffer:
        for event in events_for({"press-1": 50}):
            buffer.submit([event])
        assert buffer.flush()
        status = buffer.status()
    assert status.captured_events_total == 50
    assert status.commits_total < 10


def test_submit_is_cheap_and_never_waits_for_the_disk(db: Path) -> None:
    events = events_for({"press-1": 100})
    with open_buffer(db) as buffer:
        started = time.perf_counter()
        for _ in range(200):
            buffer.submit(events)
        per_call_s = (time.perf_counter() - started) / 200
        assert buffer.flush(timeout_s=30)
    assert per_call_s < 0.001  # 20k events committed meanwhile; a submit never waits for them


@pytest.mark.parametrize(("durability", "level"), [("full", 2), ("normal", 1), ("off", 0)])
def test_durability_sets_the_sqlite_synchronous_level(
    db: Path, durability: str, level: int
) -> None:
    with open_buffer(db, durability=durability) as buffer:
        assert buffer._writer.conn.execute("PRAGMA synchronous").fetchone()[0] == level
        assert buffer._writer.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert buffer.status().durability == durability


def test_status_reports_totals_without_scanning(db: Path) -> None:
    with open_buffer(db, max_bytes=2 * 1024 * 1024) as buffer:
        buffer.submit(events_for({"press-1": 5, "weld-1": 5}))
        assert buffer.flush()
        status = buffer.status()
    assert status.path == str(db)
    assert status.accepting
    assert status.depth_events == 10
    assert status.bytes == sum(len(body_of(e, s)) for e in ("press-1", "weld-1") for s in range(5))
    assert status.max_bytes == 2 * 1024 * 1024
    assert status.oldest_age_s is not None
    assert 0 <= status.oldest_age_s < 60
    assert status.captured_events_total == 10
    assert status.commits_total >= 1
    assert status.last_commit_s is not None
    assert status.last_commit_s > 0
    assert status.quarantined_files_total == 0


def test_a_second_agent_cannot_open_the_same_buffer(db: Path) -> None:
    with open_buffer(db), pytest.raises(BufferLockedError, match="in use by edge-agent"):
        open_buffer(db)
    with open_buffer(db):  # the lock is released by close
        pass


def test_the_default_path_is_used_when_none_is_configured(tmp_path: Path) -> None:
    default = tmp_path / "agent" / "buffer.db"
    with EventBuffer.open(BufferConfig(), default) as buffer:
        assert buffer.path == default
    configured = tmp_path / "elsewhere.db"
    with EventBuffer.open(BufferConfig(path=configured), default) as buffer:
        assert buffer.path == configured


def test_close_commits_what_was_queued_and_refuses_later_submits(db: Path) -> None:
    buffer = open_buffer(db, commit_interval_ms=1000)
    buffer.submit(events_for({"press-1": 3}))
    buffer.close()
    buffer.close()  # idempotent
    with pytest.raises(EventBufferError, match="closed"):
        buffer.submit(events_for({"press-1": 1}))
    with open_buffer(db) as reopened:
        assert reopened.status().depth_events == 3


def test_reads_from_another_thread_see_only_committed_rows(db: Path) -> None:
    stop = threading.Event()
    problems: list[str] = []
    with open_buffer(db, commit_interval_ms=5) as buffer:

        def reader() -> None:
            while not stop.is_set():
                rows = buffer.read_after(0, 100_000)
                seqs = [row.seq for row in rows]
                if seqs != list(range(len(seqs))):
                    problems.append(f"not a committed prefix: {seqs[:5]}...")

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for start in range(0, 2000, 100):
                buffer.submit(events_for({"press-1": 100}, {"press-1": start}))
            assert buffer.flush(timeout_s=30)
        finally:
            stop.set()
            thread.join()
    assert problems == []
