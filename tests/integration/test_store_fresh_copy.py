"""The fresh-batch COPY path gives exactly the facts of the SQL (staging) path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from _pg_helpers import T0, StreamBuilder, migrated_database

from collector.store import write, writer

pytestmark = pytest.mark.integration

S = timedelta(seconds=1)
FACTS = {
    "audit.events": "type, seq, event_time, received_time, correlation_id, causation_id, "
    "historical, payload, agent_id",
    "lineside.process_values": "event_time, tag, value_num, value_text, value_bool, unit, "
    "quality, status",
    "lineside.production_counts": "event_time, interval_start, good, scrap, total, "
    "counter_reset, product_id, order_id",
    "lineside.state_intervals": "start_time, end_time, state, previous_state, raw_value, "
    "reason_code, seq",
    "lineside.production_events": "event_time, seq, kind, order_id, product_id, "
    "ideal_cycle_time_s, end_reason",
    "lineside.production_runs": "start_time, end_time, order_id, product_id, "
    "ideal_cycle_time_s, end_reason",
    "lineside.equipment": "first_seen, last_seen",
    "ops.sequence_state": "agent_id, max_seq",
    "ops.sequence_gaps": "first_seq, last_seq, closed_by",
}


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    with migrated_database("store_fresh") as dsn:
        yield dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def every_type(stream: StreamBuilder, start: timedelta = timedelta(0)) -> list:
    t = T0 + start
    return [
        stream.state("running", t, previous="idle", raw_value=1),
        stream.started("order-1", t + S, ideal_cycle_time_s=2.5),
        stream.counted(118, 2, t + 10 * S, interval_start=t + S),
        stream.sample("pressure", 182.4, t + 11 * S),
        stream.sample("recipe", "A-7\t\\x\n", t + 11 * S, unit=None),
        stream.sample("door_open", False, t + 11 * S, unit="", quality="uncertain"),
        stream.sample("cycles", 12, t + 11 * S, unit=None),
        stream.sample("plc_string", "AB\x00", t + 12 * S, unit=None),
        stream.sample("big", 10**30, t + 12 * S, unit=None),
        stream.state(
            "unplanned_stop", t + 20 * S, previous="running", reason_code=17, raw_value="E\\17"
        ),
        stream.state("idle", t + 21 * S, previous="unplanned_stop", raw_value=2.25),
        stream.ended("order-1", t + 30 * S, reason="order_changed"),
        stream.started("order-2", t + 30 * S, ideal_cycle_time_s=None),
        stream.counted(5, 0, t + 40 * S, reset=True),
        stream.overflow(3, 4, t + 50 * S, seq=18),
    ]


def facts(conn: psycopg.Connection, stream: StreamBuilder) -> dict[str, list]:
    eq = conn.execute(
        "SELECT id FROM lineside.equipment WHERE equipment = %s", (stream.equipment.equipment,)
    ).fetchone()[0]
    key = {"lineside.equipment": "id"}
    return {
        table: conn.execute(
            f"SELECT {columns} FROM {table} WHERE {key.get(table, 'equipment_id')} = %s "
            f"ORDER BY {columns}",
            (eq,),
        ).fetchall()
        for table, columns in FACTS.items()
    }


def write_twice(conn: psycopg.Connection, stream: StreamBuilder) -> None:
    """Two writes: the second brings a late state change and a late order change too."""
    write(conn, [stream.batch(every_type(stream))], [])
    late = every_type(stream, timedelta(seconds=5))  # seqs above the first write's
    write(conn, [stream.batch([e._replace(seq=e.seq + 100) for e in late])], [])


def test_every_event_type_gives_the_same_facts_by_copy_and_by_sql(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_copy = StreamBuilder(equipment="fresh-copy")
    by_sql = StreamBuilder(equipment="fresh-sql")
    copied = []
    original = writer.copy_fresh

    def spy(cur: object, direct: list, arrived: dict, dropped: dict) -> int:
        copied.append(len(direct))
        return original(cur, direct, arrived, dropped)

    monkeypatch.setattr(writer, "copy_fresh", spy)
    write_twice(conn, by_copy)
    assert copied == [1, 1]  # both writes went the COPY way
    monkeypatch.setattr(writer, "encode_facts", lambda *args: None)  # force the SQL way
    write_twice(conn, by_sql)
    assert copied == [1, 1]

    copy_facts, sql_facts = facts(conn, by_copy), facts(conn, by_sql)
    for table in FACTS:
        assert copy_facts[table] == sql_facts[table], table
    assert len(copy_facts["lineside.state_intervals"]) == 6
    values = [row[1:] for row in copy_facts["lineside.process_values"]]
    assert ("big", 1e30, None, None, None, "good", "Good") in values
    assert ("plc_string", None, "AB\ufffd", None, None, "good", "Good") in values


def test_a_fresh_batch_colliding_with_a_stored_event_falls_back(
    conn: psycopg.Connection,
) -> None:
    stream = StreamBuilder(equipment="fresh-collision")
    first = stream.batch(every_type(stream))
    assert write(conn, [first], []).events_inserted == 15
    # the same events again under seqs above everything stored: "fresh", yet stored
    again = stream.batch([e._replace(seq=e.seq + 100) for e in first.events])
    result = write(conn, [again], [])
    assert (result.events_inserted, result.duplicates_skipped) == (0, 15)
    assert len(facts(conn, stream)["lineside.process_values"]) == 6
