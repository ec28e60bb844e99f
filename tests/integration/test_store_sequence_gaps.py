"""Sequence gaps in PostgreSQL: opened, split, closed by arrival or by a buffer overflow,
and right when several collectors write the same equipment at once."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from _pg_helpers import T0, StreamBuilder, migrated_database

from collector.store import OpenGapCount, count_open_gaps, write

pytestmark = pytest.mark.integration

S = timedelta(seconds=1)
_names = itertools.count()


@pytest.fixture
def dsn() -> Iterator[str]:
    # its own database per test: count_open_gaps() counts over every stream
    with migrated_database("store_gaps") as dsn:
        yield dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def new_stream() -> StreamBuilder:
    return StreamBuilder(equipment=f"gaps-{next(_names)}")


def seqs(stream: StreamBuilder, *numbers: int) -> Any:
    return stream.batch([stream.sample("p", float(n), T0 + n * S, seq=n) for n in numbers])


def gap_rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT first_seq, last_seq, closed_by FROM ops.sequence_gaps ORDER BY first_seq, id"
    ).fetchall()


def test_gaps_open_split_close_and_are_explained_by_an_overflow(conn: psycopg.Connection) -> None:
    stream = new_stream()
    assert write(conn, [seqs(stream, 0, 1, 2, 3, 4)], []).gaps_opened == 0
    opened = write(conn, [seqs(stream, 10, 11, 12, 13, 14)], [])
    assert (opened.gaps_opened, opened.gaps_closed) == (1, 0)
    assert gap_rows(conn) == [(5, 9, None)]
    assert count_open_gaps(conn) == OpenGapCount(gaps=1, missing_events=5)

    split = write(conn, [seqs(stream, 7)], [])  # a late event inside the gap
    assert (split.gaps_opened, split.gaps_closed) == (0, 0)
    assert gap_rows(conn) == [(5, 6, None), (8, 9, None)]
    detected = conn.execute("SELECT DISTINCT detected_at FROM ops.sequence_gaps").fetchall()
    assert len(detected) == 1  # both parts keep when the gap was found
    assert count_open_gaps(conn) == OpenGapCount(gaps=2, missing_events=4)

    filled = write(conn, [seqs(stream, 6, 5)], [])
    assert (filled.gaps_opened, filled.gaps_closed) == (0, 1)
    assert gap_rows(conn) == [(5, 6, "arrived"), (8, 9, None)]

    overflow = stream.batch([stream.overflow(8, 9, T0 + 20 * S, seq=15)])
    explained = write(conn, [overflow], [])
    assert (explained.gaps_opened, explained.gaps_closed) == (0, 1)
    assert gap_rows(conn) == [(5, 6, "arrived"), (8, 9, "dropped_by_agent")]
    assert count_open_gaps(conn) == OpenGapCount(gaps=0, missing_events=0)
    closed = conn.execute(
        "SELECT count(*) FROM ops.sequence_gaps WHERE closed_at >= detected_at"
    ).fetchone()
    assert closed == (2,)


def test_first_contact_is_the_baseline(conn: psycopg.Connection) -> None:
    stream = new_stream()
    result = write(conn, [seqs(stream, 1000, 1001)], [])
    assert result.gaps_opened == 0
    assert gap_rows(conn) == []
    write(conn, [seqs(stream, 3)], [])  # older than anything known: not a gap, just stored
    assert gap_rows(conn) == []


def test_an_overflow_arriving_before_the_backlog_leaves_the_rest_open(
    conn: psycopg.Connection,
) -> None:
    stream = new_stream()
    write(conn, [seqs(stream, 0, 1)], [])
    # live lane first: the overflow event (seq 30) says 2..19 were dropped; 20..29 are coming
    result = write(conn, [stream.batch([stream.overflow(2, 19, T0 + 40 * S, seq=30)])], [])
    assert (result.gaps_opened, result.gaps_closed) == (1, 1)
    assert gap_rows(conn) == [(2, 19, "dropped_by_agent"), (20, 29, None)]
    write(conn, [seqs(stream, *range(20, 30))], [])
    assert gap_rows(conn) == [(2, 19, "dropped_by_agent"), (20, 29, "arrived")]


def test_streams_of_different_agents_are_separate(conn: psycopg.Connection) -> None:
    first = StreamBuilder(equipment="shared-press", agent_id="agent-a")
    second = StreamBuilder(equipment="shared-press", agent_id="agent-b")
    write(conn, [seqs(first, 0, 1), seqs(second, 100, 101)], [])
    write(conn, [seqs(first, 2), seqs(second, 105)], [])
    assert conn.execute(
        "SELECT agent_id, first_seq, last_seq FROM ops.sequence_gaps WHERE closed_at IS NULL"
    ).fetchall() == [("agent-b", 102, 104)]


def test_collectors_writing_one_equipment_at_once_agree_on_its_gaps(dsn: str) -> None:
    """Blocks of 10 seqs handed out to 3 writers in a shuffled order; every block arrives
    eventually, so no gap may stay open (without the per-equipment lock, a writer would
    judge gaps from a stale highest seq and leave some open)."""
    stream = new_stream()
    blocks = list(range(0, 600, 10))
    random.Random(5).shuffle(blocks)
    queue = list(blocks)
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def collector() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as own:
                barrier.wait(timeout=30)
                while True:
                    with lock:
                        if not queue:
                            return
                        start = queue.pop()
                    write(own, [seqs(stream, *range(start, start + 10))], [])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=collector) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert count_open_gaps(conn) == OpenGapCount(gaps=0, missing_events=0)
        assert conn.execute("SELECT max_seq FROM ops.sequence_state").fetchall() == [(599,)]
        assert conn.execute("SELECT count(*) FROM audit.events").fetchone() == (600,)
        closed_by = conn.execute("SELECT DISTINCT closed_by FROM ops.sequence_gaps").fetchall()
        assert closed_by in ([], [("arrived",)])
