"""Daily partitions: created ahead and on demand, listed, dropped by retention (dry run too)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from _pg_helpers import StreamBuilder, migrated_database

from collector.store import (
    PARTITIONED_TABLES,
    PartitionError,
    drop_partitions_older_than,
    ensure_partitions,
    list_partitions,
    write,
)
from collector.store import writer as writer_module

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)


@pytest.fixture
def dsn() -> Iterator[str]:
    # a database per test: partitions are global state of a database
    with migrated_database("store_partitions") as dsn:
        yield dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def names(conn: psycopg.Connection) -> list[str]:
    return sorted(p.name for p in list_partitions(conn))


def expected(days: list[date]) -> list[str]:
    return sorted(f"{table}_p{day:%Y%m%d}" for table in PARTITIONED_TABLES for day in days)


def test_ensure_creates_the_window_once(conn: psycopg.Connection) -> None:
    window = [date(2026, 3, d) for d in (8, 9, 10, 11)]
    created = ensure_partitions(conn, back_days=2, ahead_days=1, now=NOW)
    assert sorted(created) == expected(window)
    assert ensure_partitions(conn, back_days=2, ahead_days=1, now=NOW) == []
    assert names(conn) == expected(window)


def test_list_gives_utc_day_bounds_oldest_first_and_row_estimates(conn: psycopg.Connection) -> None:
    ensure_partitions(conn, back_days=1, ahead_days=0, now=NOW)
    conn.execute("SET TimeZone = 'America/New_York'")  # bounds must not depend on it
    stream = StreamBuilder()
    at = datetime(2026, 3, 9, 6, tzinfo=UTC)
    write(conn, [stream.batch(stream.samples(7, at))], [])
    conn.execute("ANALYZE audit.events_p20260309")
    partitions = list_partitions(conn, tables=["audit.events"])
    assert [(p.name, p.lower, p.upper) for p in partitions] == [
        (
            "audit.events_p20260309",
            datetime(2026, 3, 9, tzinfo=UTC),
            datetime(2026, 3, 10, tzinfo=UTC),
        ),
        (
            "audit.events_p20260310",
            datetime(2026, 3, 10, tzinfo=UTC),
            datetime(2026, 3, 11, tzinfo=UTC),
        ),
    ]
    assert partitions[0].row_estimate == 7
    assert partitions[0].parent == "audit.events"
    assert partitions[0].total_bytes > 0


def test_dry_run_lists_exactly_what_the_drop_then_drops(conn: psycopg.Connection) -> None:
    ensure_partitions(conn, back_days=5, ahead_days=1, now=NOW)  # 5th .. 11th of March
    stream = StreamBuilder()
    write(conn, [stream.batch(stream.samples(3, datetime(2026, 3, 6, 12, tzinfo=UTC)))], [])
    # cutoff 2026-03-07 14:30: the 5th and 6th are entirely older; the 7th is not
    dry = drop_partitions_older_than(conn, 3, dry_run=True, now=NOW)
    assert sorted(p.name for p in dry) == expected([date(2026, 3, 5), date(2026, 3, 6)])
    assert len(names(conn)) == 7 * len(PARTITIONED_TABLES)  # the dry run changed nothing

    dropped = drop_partitions_older_than(conn, 3, now=NOW)
    assert dropped == dry
    assert names(conn) == expected([date(2026, 3, d) for d in range(7, 12)])
    assert conn.execute("SELECT count(*) FROM audit.events").fetchone() == (0,)
    assert conn.autocommit is True  # restored as it was
    assert drop_partitions_older_than(conn, 3, now=NOW) == []


def test_a_partition_ending_exactly_at_the_cutoff_is_dropped(conn: psycopg.Connection) -> None:
    ensure_partitions(conn, back_days=2, ahead_days=0, now=NOW)
    midnight = datetime(2026, 3, 10, tzinfo=UTC)
    dry = drop_partitions_older_than(conn, 1, dry_run=True, now=midnight + timedelta(days=1))
    assert sorted({p.lower.date() for p in dry}) == [date(2026, 3, 8), date(2026, 3, 9)]


def test_bad_arguments_name_the_fix(conn: psycopg.Connection) -> None:
    with pytest.raises(PartitionError, match="at least 1"):
        drop_partitions_older_than(conn, 0, dry_run=True)
    with pytest.raises(PartitionError, match="choose from"):
        list_partitions(conn, tables=["audit.nope"])
    with pytest.raises(PartitionError, match="0 or more"):
        ensure_partitions(conn, back_days=-1)


def test_the_writer_creates_a_missing_day_once_and_then_trusts_its_cache(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[date]] = []
    real = writer_module.ensure_partitions_for_days

    def counting(c: psycopg.Connection, days: list[date]) -> list[str]:
        calls.append(sorted(days))
        return real(c, days)

    monkeypatch.setattr(writer_module, "ensure_partitions_for_days", counting)
    stream = StreamBuilder()
    old_day = datetime(2019, 6, 1, 23, 59, tzinfo=UTC)
    write(conn, [stream.batch(stream.samples(3, old_day, step=timedelta(minutes=1)))], [])
    write(conn, [stream.batch(stream.samples(2, old_day + timedelta(minutes=5)))], [])
    assert calls == [[date(2019, 6, 1), date(2019, 6, 2)]]
    assert conn.execute("SELECT count(*) FROM lineside.process_values").fetchone() == (5,)
    assert "audit.events_p20190602" in names(conn)


def test_a_day_dropped_behind_the_writers_cache_is_created_again(
    conn: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    stream = StreamBuilder()
    day = datetime(2020, 2, 2, 8, tzinfo=UTC)
    write(conn, [stream.batch(stream.samples(2, day))], [])
    with psycopg.connect(conn.info.dsn, autocommit=True) as other:  # retention elsewhere
        assert drop_partitions_older_than(other, 30, now=day + timedelta(days=60))
    with caplog.at_level("WARNING", logger="collector.store.writer"):
        result = write(conn, [stream.batch(stream.samples(3, day + timedelta(hours=1)))], [])
    assert "event=store_cache_stale" in caplog.text  # the cached day was really stale
    assert result.events_inserted == 3
    assert conn.execute("SELECT count(*) FROM audit.events").fetchone() == (3,)


def test_several_collectors_ensuring_at_once(dsn: str) -> None:
    workers = 4
    barrier = threading.Barrier(workers)
    created: list[str] = []
    errors: list[BaseException] = []

    def collector() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                barrier.wait(timeout=30)
                created.extend(ensure_partitions(conn, back_days=3, ahead_days=3, now=NOW))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=collector) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(created) == expected([date(2026, 3, d) for d in range(7, 14)])


def test_creating_a_partition_does_not_wait_for_open_writers(dsn: str) -> None:
    with (
        psycopg.connect(dsn, autocommit=True) as writer,
        psycopg.connect(dsn, autocommit=True) as admin,
    ):
        ensure_partitions(admin, back_days=0, ahead_days=0, now=NOW)
        writer.execute("BEGIN")
        writer.execute(
            "INSERT INTO audit.events (event_id, event_time, equipment_id, agent_id, type, seq,"
            " received_time, historical, payload, batch_id) VALUES (gen_random_uuid(), %s, 1,"
            " 'a', 'tag.sampled', 1, %s, false, '{}', gen_random_uuid())",
            (NOW, NOW),
        )
        admin.execute("SET lock_timeout = '2s'")  # ACCESS EXCLUSIVE would time out here
        created = ensure_partitions(admin, back_days=0, ahead_days=1, now=NOW)
        writer.execute("ROLLBACK")
    assert "audit.events_p20260311" in created
