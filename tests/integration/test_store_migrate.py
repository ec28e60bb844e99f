"""Migrations against a real PostgreSQL: idempotent, checksummed, safe to run concurrently."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from _pg_helpers import fresh_database

from collector.store import (
    ConnectionStateError,
    Migration,
    MigrationError,
    apply_migrations,
    load_migrations,
)

pytestmark = pytest.mark.integration

SHIPPED = [m.name for m in load_migrations()]


@pytest.fixture
def dsn() -> Iterator[str]:
    with fresh_database("store_migrate") as dsn:
        yield dsn


def test_applies_everything_once_then_nothing(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert apply_migrations(conn) == SHIPPED
        assert apply_migrations(conn) == []
        recorded = conn.execute("SELECT name FROM ops.schema_migrations ORDER BY name").fetchall()
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT schemaname || '.' || tablename FROM pg_tables "
                "WHERE schemaname IN ('lineside', 'audit', 'ops')"
            )
        }
    assert [row[0] for row in recorded] == SHIPPED
    assert {
        "lineside.equipment",
        "audit.events",
        "lineside.state_intervals",
        "lineside.production_counts",
        "lineside.production_events",
        "lineside.production_runs",
        "lineside.process_values",
        "ops.dead_letters",
        "ops.sequence_state",
        "ops.sequence_gaps",
        "ops.schema_migrations",
    } <= tables


def test_a_changed_applied_migration_is_an_error_naming_the_file(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        apply_migrations(conn)
        conn.execute(
            "UPDATE ops.schema_migrations SET checksum = repeat('0', 64) WHERE name = %s",
            (SHIPPED[1],),
        )
        with pytest.raises(MigrationError, match=SHIPPED[1]) as caught:
            apply_migrations(conn)
    assert "new migration" in str(caught.value)


def test_a_failing_migration_leaves_nothing_behind(dsn: str) -> None:
    broken = [
        Migration.from_text("0001_table.sql", "CREATE TABLE public.kept_only_if_all_ok (x int);"),
        Migration.from_text("0002_broken.sql", "SELECT 1 / 0;"),
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(MigrationError, match=r"0002_broken\.sql"):
            apply_migrations(conn, broken)
        assert conn.execute("SELECT to_regclass('public.kept_only_if_all_ok')").fetchone() == (
            None,
        )
        # the bookkeeping table was created in the same, rolled back, transaction
        assert conn.execute("SELECT to_regclass('ops.schema_migrations')").fetchone() == (None,)
        assert apply_migrations(conn, broken[:1]) == ["0001_table.sql"]


def test_new_migrations_after_applied_ones_are_applied(dsn: str) -> None:
    first = Migration.from_text("0001_a.sql", "CREATE TABLE public.a (x int);")
    second = Migration.from_text("0002_b.sql", "CREATE TABLE public.b (x int);")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert apply_migrations(conn, [first]) == ["0001_a.sql"]
        assert apply_migrations(conn, [second, first]) == ["0002_b.sql"]


def test_collectors_starting_at_once_apply_each_migration_exactly_once(dsn: str) -> None:
    workers = 4
    barrier = threading.Barrier(workers)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def start_collector() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                barrier.wait(timeout=30)
                results.append(apply_migrations(conn))
        except BaseException as exc:  # reported below, with the other workers' results
            errors.append(exc)

    threads = [threading.Thread(target=start_collector) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(name for result in results for name in result) == SHIPPED
    assert sorted(len(result) for result in results) == [0] * (workers - 1) + [len(SHIPPED)]


def test_a_connection_inside_a_transaction_is_refused(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT 1")  # opens a transaction (not autocommit)
        with pytest.raises(ConnectionStateError, match="autocommit"):
            apply_migrations(conn)
