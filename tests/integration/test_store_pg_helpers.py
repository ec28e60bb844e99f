"""The test helpers themselves: throwaway databases and the private cluster."""

from __future__ import annotations

import psycopg
import pytest
from _pg_helpers import PrivateCluster, database_exists, fresh_database

pytestmark = pytest.mark.integration


def test_fresh_databases_are_separate_and_dropped_afterwards() -> None:
    with fresh_database("helper_a") as first, fresh_database("helper_a") as second:
        assert first != second
        with psycopg.connect(first, autocommit=True) as conn:
            conn.execute("CREATE TABLE only_here (x int)")
            name = conn.info.dbname
        with psycopg.connect(second, autocommit=True) as conn:
            found = conn.execute("SELECT to_regclass('only_here')").fetchone()
        assert found == (None,)
        assert database_exists(name)
    assert not database_exists(name)


def test_fresh_database_is_dropped_even_with_a_connection_left_open() -> None:
    with fresh_database("helper_b") as dsn:
        leaked = psycopg.connect(dsn)
        name = leaked.info.dbname
    assert not database_exists(name)
    assert leaked.closed or leaked.broken or _fails(leaked)


def _fails(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_private_cluster_stops_and_starts_on_the_same_port_keeping_data() -> None:
    cluster = PrivateCluster()
    try:
        cluster.start()
        dsn = cluster.dsn
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
            assert conn.execute("SHOW port").fetchone() == (str(cluster.port),)
        held = psycopg.connect(dsn, autocommit=True)

        cluster.stop()  # fast: disconnects clients
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2)

        cluster.start()
        assert cluster.dsn == dsn
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]
    finally:
        cluster.cleanup()
    assert not cluster.root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)
