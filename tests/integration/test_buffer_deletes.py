"""Deletes of delivered events against a real SQLite file: ranges, held deletes, totals."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from _buffer_helpers import events_for, open_buffer, wait_until

from edge_agent.buffer import EventBuffer, _commit, _deletes, _writer

pytestmark = pytest.mark.integration


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "buffer.db"


def assert_totals_match_the_file(buffer: EventBuffer) -> None:
    """depth, bytes and oldest age as the writer keeps them equal what the file holds."""
    rows = buffer.read_after(0, 1_000_000)
    status = buffer.status()
    assert status.depth_events == len(rows)
    assert status.bytes == sum(len(row.body) for row in rows)
    if rows:
        assert status.oldest_age_s == pytest.approx(time.time() - rows[0].captured_ms / 1000, abs=5)
        assert buffer.first_rowid() == rows[0].rowid
    else:
        assert status.oldest_age_s is None
        assert buffer.first_rowid() == 0


@pytest.mark.parametrize(
    "committed_before",
    [0, 50, 120],
    ids=["sizes-known", "half-from-a-previous-run", "all-from-a-previous-run"],
)
def test_ranges_singles_duplicates_and_unknown_ids_are_deleted_exactly(
    db: Path, committed_before: int
) -> None:
    """Rows committed by this process are counted from memory, older ones by SQLite."""
    # 3 equipment interleaved: one batch of an equipment is every 3rd rowid
    events = events_for({"press-1": 40, "press-2": 40, "weld-1": 40})
    with open_buffer(db) as buffer:
        buffer.submit(events[:committed_before])
    with open_buffer(db) as buffer:
        buffer.submit(events[committed_before:])
        assert buffer.flush()
        rows = buffer.read_after(0, 1000)
        assert len(rows) == 120
        ids = [row.rowid for row in rows]
        first_batch = ids[0:60:3]  # press-1's first 20: a stride, no range
        confirmed = ids[0:60]  # all three batches of that stretch: one range of 60
        gone = set(confirmed) | set(ids[70:75]) | {ids[90], ids[99]}
        buffer.delete(first_batch)
        buffer.delete(confirmed[1::3] + confirmed[2::3])
        buffer.delete(ids[70:75])  # a run shorter than RANGE_MIN_ROWS
        buffer.delete([ids[99], ids[90], ids[99]])  # out of order, twice
        buffer.delete([*first_batch, ids[-1] + 1000])  # again, and an id never stored
        assert buffer.flush()
        left = buffer.read_after(0, 1000)
        assert [row.rowid for row in left] == [rowid for rowid in ids if rowid not in gone]
        assert_totals_match_the_file(buffer)
        buffer.delete([row.rowid for row in left])
        assert buffer.flush()
        assert_totals_match_the_file(buffer)
        assert buffer.last_rowid() == 0


def test_held_deletes_are_applied_within_the_delay_without_a_flush(db: Path) -> None:
    with open_buffer(db) as buffer:
        buffer.submit(events_for({"press-1": 20}))
        assert buffer.flush()
        buffer.delete([row.rowid for row in buffer.read_after(0, 100)][:15])
        started = time.monotonic()
        wait_until(lambda: buffer.status().depth_events == 5, timeout_s=_deletes.DELETE_DELAY_S + 2)
        assert time.monotonic() - started < _deletes.DELETE_DELAY_S + 1.5
        assert len(buffer.read_after(0, 100)) == 5
        assert_totals_match_the_file(buffer)


def test_a_big_delete_goes_in_chunks_and_ends_exact(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_deletes, "DELETE_CHUNK_ROWS", 7)
    with open_buffer(db) as buffer:
        buffer.submit(events_for({"press-1": 30, "weld-1": 30}))
        assert buffer.flush()
        ids = [row.rowid for row in buffer.read_after(0, 100)]
        commits = buffer.status().commits_total
        buffer.delete(ids[0::2])  # press-1: every other rowid
        buffer.delete(ids[1:50:2])
        wait_until(lambda: buffer.status().depth_events == 5, timeout_s=_deletes.DELETE_DELAY_S + 5)
        assert buffer.status().commits_total - commits >= 55 // 7  # chunk by chunk
        assert [row.rowid for row in buffer.read_after(0, 100)] == ids[51::2]
        assert_totals_match_the_file(buffer)


def test_delivered_events_are_not_dropped_by_the_size_bound(db: Path) -> None:
    max_bytes = 1024 * 1024
    with open_buffer(db, max_bytes=max_bytes) as buffer:
        buffer.submit(events_for({"press-1": 600}))
        assert buffer.flush()
        size = buffer.status().bytes / 600
        buffer.delete([row.rowid for row in buffer.read_after(0, 1000)])  # held, not applied
        fresh = int((max_bytes - 50_000) / size)  # fits, unless the delivered ones counted
        assert (600 + fresh) * size > max_bytes
        buffer.submit(events_for({"press-1": fresh}, {"press-1": 600}))
        # no flush (it would apply the held deletes first): wait for the group commit
        wait_until(lambda: buffer.status().captured_events_total == 600 + fresh, timeout_s=5)
        assert buffer.status().dropped_events_total == {}
        assert buffer.flush()
        assert [row.seq for row in buffer.read_after(0, 10_000)] == list(range(600, 600 + fresh))
        assert_totals_match_the_file(buffer)


def test_a_failed_delete_chunk_is_retried_and_the_totals_stay_exact(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_delete = _commit.delete_held
    failures = []

    def delete_held(conn: sqlite3.Connection, rowids: list[int], sizes: Any) -> Any:
        if not failures:
            failures.append(len(rowids))
            raise sqlite3.OperationalError("disk I/O error")
        return real_delete(conn, rowids, sizes)

    monkeypatch.setattr(_commit, "delete_held", delete_held)
    monkeypatch.setattr(_writer, "RETRY_S", (0.01,))
    with open_buffer(db) as buffer:
        buffer.submit(events_for({"press-1": 12, "weld-1": 12}))
        assert buffer.flush()
        ids = [row.rowid for row in buffer.read_after(0, 100)]
        buffer.delete(ids[:10])
        buffer.submit(events_for({"press-1": 2}, {"press-1": 12}))  # same transaction
        assert buffer.flush(timeout_s=5)
        assert failures == [10]
        assert [row.rowid for row in buffer.read_after(0, 100)] == [*ids[10:], 25, 26]
        assert_totals_match_the_file(buffer)


def test_deleting_rows_a_bound_dropped_subtracts_nothing_twice(db: Path) -> None:
    max_bytes = 1024 * 1024
    with open_buffer(db, max_bytes=max_bytes) as buffer:
        buffer.submit(events_for({"press-1": 1000}))
        assert buffer.flush()
        first = buffer.read_after(0, 100)  # read before the bound drops them
        size = buffer.status().bytes / 1000
        buffer.submit(events_for({"press-1": int(max_bytes / size)}, {"press-1": 1000}))
        assert buffer.flush()
        assert buffer.status().dropped_events_total["press-1"] >= 100
        buffer.delete([row.rowid for row in first])  # delivered meanwhile: already dropped
        kept = buffer.read_after(0, 10_000)
        buffer.delete([row.rowid for row in kept[:300]])
        assert buffer.flush()
        assert buffer.read_after(0, 10_000) == kept[300:]
        assert_totals_match_the_file(buffer)
