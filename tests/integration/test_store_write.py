"""write(): events and facts of all six types, idempotency, concurrency, dead letters."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from _pg_helpers import T0, StreamBuilder, migrated_database, new_id

from collector.records import AcceptedBatch, AckTarget, DeadLetter
from collector.store import ConnectionStateError, UnstorableBatchError, WriteResult, write

pytestmark = pytest.mark.integration

S = timedelta(seconds=1)
FACT_TABLES = (
    "audit.events",
    "lineside.process_values",
    "lineside.production_counts",
    "lineside.state_intervals",
    "lineside.production_events",
    "lineside.production_runs",
)


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    with migrated_database("store_write") as dsn:
        yield dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def stream(request: pytest.FixtureRequest) -> StreamBuilder:
    # every test writes its own equipment, so tests sharing the database stay independent
    return StreamBuilder(equipment=request.node.name[:60].replace("[", "-").replace("]", ""))


def equipment_id(conn: psycopg.Connection, stream: StreamBuilder) -> int:
    row = conn.execute(
        "SELECT id FROM lineside.equipment WHERE equipment = %s", (stream.equipment.equipment,)
    ).fetchone()
    assert row is not None
    return row[0]


def rows(conn: psycopg.Connection, query: str, stream: StreamBuilder) -> list[tuple[Any, ...]]:
    return conn.execute(query, {"eq": equipment_id(conn, stream)}).fetchall()


def counts(conn: psycopg.Connection, stream: StreamBuilder) -> dict[str, int]:
    eq = equipment_id(conn, stream)
    return {
        table: conn.execute(
            f"SELECT count(*) FROM {table} WHERE equipment_id = %s", (eq,)
        ).fetchone()[0]
        for table in FACT_TABLES
    }


def all_six(stream: StreamBuilder) -> list:
    return [
        stream.state("running", T0, previous="idle", raw_value=1),
        stream.started("order-1", T0 + S, ideal_cycle_time_s=2.5),
        stream.counted(118, 2, T0 + 10 * S, interval_start=T0 + S),
        stream.sample("pressure", 182.4, T0 + 11 * S),
        stream.sample("recipe", "A-7", T0 + 11 * S, unit=None),
        stream.sample("door_open", False, T0 + 11 * S, unit=None, quality="uncertain"),
        stream.sample("cycles", 12, T0 + 11 * S, unit=None),
        stream.state(
            "unplanned_stop", T0 + 20 * S, previous="running", reason_code=17, raw_value="E17"
        ),
        stream.ended("order-1", T0 + 30 * S, reason="order_changed"),
        stream.started("order-2", T0 + 30 * S, ideal_cycle_time_s=None),
        stream.counted(5, 0, T0 + 40 * S, reset=True),
        stream.overflow(3, 4, T0 + 50 * S, seq=12),  # seqs 11.. are its own; explains nothing open
    ]


def test_all_six_event_types_become_facts(conn: psycopg.Connection, stream: StreamBuilder) -> None:
    result = write(conn, [stream.batch(all_six(stream))], [])
    assert result == WriteResult(events_inserted=12, gaps_opened=1, gaps_closed=0)  # seq 11 skipped

    assert rows(
        conn,
        "SELECT type, seq, historical FROM audit.events WHERE equipment_id = %(eq)s ORDER BY seq",
        stream,
    )[0] == (
        "equipment.state_changed",
        0,
        False,
    )
    assert rows(
        conn,
        "SELECT tag, value_num, value_text, value_bool, unit, quality, status "
        "FROM lineside.process_values WHERE equipment_id = %(eq)s ORDER BY tag",
        stream,
    ) == [
        ("cycles", 12.0, None, None, None, "good", "Good"),
        ("door_open", None, None, False, None, "uncertain", "Good"),
        ("pressure", 182.4, None, None, "bar", "good", "Good"),
        ("recipe", None, "A-7", None, None, "good", "Good"),
    ]
    assert rows(
        conn,
        "SELECT event_time, interval_start, good, scrap, total, counter_reset, product_id, "
        "order_id FROM lineside.production_counts WHERE equipment_id = %(eq)s ORDER BY event_time",
        stream,
    ) == [
        (T0 + 10 * S, T0 + S, 118, 2, 120, False, "bracket-a", "order-4711"),
        (T0 + 40 * S, None, 5, 0, 5, True, "bracket-a", "order-4711"),
    ]
    assert rows(
        conn,
        "SELECT start_time, end_time, state, previous_state, raw_value, reason_code "
        "FROM lineside.state_intervals WHERE equipment_id = %(eq)s ORDER BY start_time",
        stream,
    ) == [
        (T0, T0 + 20 * S, "running", "idle", 1, None),
        (T0 + 20 * S, None, "unplanned_stop", "running", "E17", 17),
    ]
    assert rows(
        conn,
        "SELECT start_time, end_time, order_id, product_id, ideal_cycle_time_s, end_reason, "
        "ended_event_id IS NOT NULL FROM lineside.production_runs WHERE equipment_id = %(eq)s "
        "ORDER BY start_time",
        stream,
    ) == [
        (T0 + S, T0 + 30 * S, "order-1", "bracket-a", 2.5, "order_changed", True),
        (T0 + 30 * S, None, "order-2", "bracket-a", None, None, False),
    ]
    assert rows(
        conn, "SELECT first_seen, last_seen FROM lineside.equipment WHERE id = %(eq)s", stream
    ) == [(T0, T0 + 50 * S)]
    assert rows(
        conn, "SELECT agent_id, max_seq FROM ops.sequence_state WHERE equipment_id = %(eq)s", stream
    ) == [("agent-7", 12)]


def test_the_same_batch_twice_counts_once(conn: psycopg.Connection, stream: StreamBuilder) -> None:
    batch = stream.batch(all_six(stream))
    first = write(conn, [batch], [])
    before = counts(conn, stream)
    again = write(conn, [batch], [])
    assert (first.events_inserted, again.events_inserted, again.duplicates_skipped) == (12, 0, 12)
    assert again.gaps_opened == again.gaps_closed == 0
    assert counts(conn, stream) == before


def test_the_same_batch_twice_in_one_write_counts_once(
    conn: psycopg.Connection, stream: StreamBuilder
) -> None:
    batch = stream.batch(stream.samples(5))
    result = write(conn, [batch, batch], [])
    assert (result.events_inserted, result.duplicates_skipped) == (5, 5)
    assert counts(conn, stream)["lineside.process_values"] == 5


def test_a_resend_with_new_events_adds_only_the_new_ones(
    conn: psycopg.Connection, stream: StreamBuilder
) -> None:
    events = stream.samples(10)
    write(conn, [stream.batch(events[:6])], [])
    result = write(conn, [stream.batch(events[3:])], [])  # rebatched: 3 old, 4 new
    assert (result.events_inserted, result.duplicates_skipped) == (4, 3)
    assert counts(conn, stream)["lineside.process_values"] == 10


def test_an_agent_reusing_an_event_with_a_new_seq_falls_back_safely(
    conn: psycopg.Connection, stream: StreamBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    old = stream.sample("p", 1.0, T0)
    write(conn, [stream.batch([old])], [])
    # same event (id and time) under a seq above everything stored: looks "fresh"
    reused = old._replace(seq=5)
    with caplog.at_level("INFO", logger="collector.store.writer"):
        result = write(conn, [stream.batch([reused, stream.sample("p", 2.0, T0 + S, seq=6)])], [])
    assert "event=store_fast_path_conflict" in caplog.text
    assert (result.events_inserted, result.duplicates_skipped) == (1, 1)
    assert counts(conn, stream)["lineside.process_values"] == 2


def write_from_collectors_at_once(
    dsn: str, batch: AcceptedBatch, collectors: int = 2
) -> list[WriteResult]:
    """``write()`` of the same batch from several connections released at the same moment."""
    barrier = threading.Barrier(collectors)
    results: list[WriteResult] = []
    errors: list[BaseException] = []

    def collector() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as own:
                barrier.wait(timeout=30)
                results.append(write(own, [batch], []))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=collector) for _ in range(collectors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


def test_the_same_batch_from_two_collectors_at_once_counts_once(
    dsn: str, stream: StreamBuilder
) -> None:
    for round_no in range(5):
        start = T0 + round_no * 100 * S
        batch = stream.batch(
            [
                stream.state("running" if round_no % 2 else "idle", start),
                *stream.samples(50, start + S),
                stream.counted(3, 1, start + 60 * S),
            ]
        )
        results = write_from_collectors_at_once(dsn, batch)
        assert sorted(r.events_inserted for r in results) == [0, 52]
        assert sum(r.duplicates_skipped for r in results) == 52
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert counts(conn, stream) == {
            "audit.events": 260,
            "lineside.process_values": 250,
            "lineside.production_counts": 5,
            "lineside.state_intervals": 5,
            "lineside.production_events": 0,
            "lineside.production_runs": 0,
        }
        open_intervals = rows(
            conn,
            "SELECT count(*) FROM lineside.state_intervals "
            "WHERE equipment_id = %(eq)s AND end_time IS NULL",
            stream,
        )
        assert open_intervals == [(1,)]


def test_dead_letters_are_capped_keeping_the_original_size(conn: psycopg.Connection) -> None:
    marker = new_id()
    letters = [
        DeadLetter(
            "lineside/v1/a/b/c/d/e/events",
            b"\x00\xff" * 50,
            "not_json",
            f"{marker} bad\x00byte",
            T0,
            AckTarget("a", "b", "agent-7", marker),
        ),
        DeadLetter("garbage/topic", b"tiny", "bad_topic", marker, T0 + S, None),
    ]
    result = write(conn, [], letters, payload_cap_bytes=10)
    assert result == WriteResult(dead_letters_stored=2)
    stored = conn.execute(
        "SELECT topic, reason, detail, agent_id, batch_id, payload, payload_bytes, replayed_at "
        "FROM ops.dead_letters WHERE detail LIKE %s ORDER BY received_at",
        (f"{marker}%",),
    ).fetchall()
    assert stored == [
        (
            "lineside/v1/a/b/c/d/e/events",
            "not_json",
            f"{marker} bad\ufffdbyte",
            "agent-7",
            marker,
            b"\x00\xff" * 5,
            100,
            None,
        ),
        ("garbage/topic", "bad_topic", marker, None, None, b"tiny", 4, None),
    ]


def test_events_and_dead_letters_commit_together(
    conn: psycopg.Connection, stream: StreamBuilder
) -> None:
    letter = DeadLetter("t", b"x", "not_json", new_id(), T0, None)
    result = write(conn, [stream.batch(stream.samples(3))], [letter])
    assert (result.events_inserted, result.dead_letters_stored) == (3, 1)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # committed


def test_an_unstorable_batch_is_named_and_nothing_is_written(
    conn: psycopg.Connection, stream: StreamBuilder
) -> None:
    good = stream.batch(stream.samples(3))
    bad = stream.batch([stream.counted(2**63, 0, T0 + 10 * S)])
    letter = DeadLetter("t", b"x", "not_json", new_id(), T0, None)
    with pytest.raises(UnstorableBatchError) as caught:
        write(conn, [good, bad], [letter])
    assert caught.value.batch_index == 1
    assert caught.value.batch_id == bad.batch_id
    assert "payload.good" in str(caught.value)
    assert conn.execute(
        "SELECT count(*) FROM ops.dead_letters WHERE detail = %s", (letter.detail,)
    ).fetchone() == (0,)
    assert write(conn, [good], []).events_inserted == 3  # the rest goes in afterwards


def test_nul_characters_and_huge_integers_in_payloads_are_stored(
    conn: psycopg.Connection, stream: StreamBuilder
) -> None:
    events = [
        stream.sample("plc_string", "AB\x00\x00", T0, unit=None),
        stream.sample("big", 10**30, T0 + S, unit=None),
    ]
    assert write(conn, [stream.batch(events)], []).events_inserted == 2
    assert rows(
        conn,
        "SELECT tag, value_num, value_text FROM lineside.process_values "
        "WHERE equipment_id = %(eq)s ORDER BY tag",
        stream,
    ) == [("big", 1e30, None), ("plc_string", None, "AB\ufffd\ufffd")]


def test_a_connection_inside_a_transaction_is_refused(dsn: str, stream: StreamBuilder) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(ConnectionStateError, match="autocommit"):
            write(conn, [stream.batch(stream.samples(1))], [])


def test_a_non_autocommit_idle_connection_is_committed(dsn: str, stream: StreamBuilder) -> None:
    with psycopg.connect(dsn) as conn:
        assert write(conn, [stream.batch(stream.samples(2))], []).events_inserted == 2
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with psycopg.connect(dsn, autocommit=True) as other:
        assert counts(other, stream)["audit.events"] == 2


def test_empty_write_does_nothing(conn: psycopg.Connection) -> None:
    assert write(conn, [], []) == WriteResult()


def test_a_late_event_moves_first_seen_back(
    conn: psycopg.Connection, stream: StreamBuilder
) -> None:
    stream.next_seq = 10
    write(conn, [stream.batch(stream.samples(2, T0))], [])
    write(conn, [stream.batch([stream.sample("p", 1.0, T0 - timedelta(hours=3), seq=3)])], [])
    assert rows(
        conn, "SELECT first_seen, last_seen FROM lineside.equipment WHERE id = %(eq)s", stream
    ) == [(T0 - timedelta(hours=3), T0 + S)]


def test_a_batch_without_events_is_ignored(conn: psycopg.Connection, stream: StreamBuilder) -> None:
    empty = StreamBuilder(equipment="never-seen-empty").batch([])
    result = write(conn, [empty, stream.batch(stream.samples(2))], [])
    assert result == WriteResult(events_inserted=2)
    assert conn.execute(
        "SELECT count(*) FROM lineside.equipment WHERE equipment = 'never-seen-empty'"
    ).fetchone() == (0,)
