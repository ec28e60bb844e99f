"""Daily partitions of the time-partitioned tables: create ahead, create on demand, list, drop.

Every partition covers one UTC day ``[day 00:00, next day 00:00)`` and is named
``<table>_pYYYYMMDD`` in the parent's schema.

Locking, so that several collectors can run this at once while others write:

* Creating uses ``CREATE TABLE ... (LIKE parent)`` then ``ATTACH PARTITION``. ATTACH needs
  only SHARE UPDATE EXCLUSIVE on the parent, which does not conflict with writers
  (``CREATE TABLE ... PARTITION OF`` would take ACCESS EXCLUSIVE and stall every writer
  and reader of the table until it got it).
* Dropping uses ``DETACH PARTITION ... CONCURRENTLY`` (again no conflict with writers)
  then ``DROP TABLE`` of the detached table. A detach interrupted half way is finished
  (``FINALIZE``) by the next drop run.
* Both hold the store's partition advisory lock, so two collectors never create or drop
  the same partition at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg
from psycopg import sql

from ._tx import LOCK_CLASS, LOCK_PARTITIONS, own_transaction, require_idle
from .errors import PartitionError

PARTITIONED_TABLES: tuple[str, ...] = (
    "audit.events",
    "lineside.process_values",
    "lineside.production_counts",
)
"""Every table partitioned by day on ``event_time`` (schema-qualified)."""


@dataclass(frozen=True)
class PartitionInfo:
    """One partition of a partitioned table."""

    parent: str
    """The partitioned table, schema-qualified (``audit.events``)."""
    name: str
    """The partition, schema-qualified (``audit.events_p20260105``)."""
    lower: datetime | None
    """Inclusive lower bound (UTC); None for a DEFAULT or MINVALUE partition."""
    upper: datetime | None
    """Exclusive upper bound (UTC); None for a DEFAULT or MAXVALUE partition."""
    row_estimate: int
    """Rows according to the statistics (planner estimate or live-tuple count)."""
    total_bytes: int
    """Table, indexes and TOAST."""
    detach_pending: bool = False
    """A ``DETACH ... CONCURRENTLY`` was interrupted; the next drop run finishes it."""


def partition_name(parent: str, day: date) -> str:
    """The schema-qualified name of ``parent``'s partition for ``day``."""
    return f"{parent}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def ensure_partitions(
    conn: psycopg.Connection,
    *,
    back_days: int = 1,
    ahead_days: int = 3,
    now: datetime | None = None,
    tables: Sequence[str] = PARTITIONED_TABLES,
) -> list[str]:
    """Make sure every day from ``now - back_days`` to ``now + ahead_days`` has a partition.

    Returns the names of the partitions created (empty when all existed). ``conn`` must
    be idle; this function commits.
    """
    if back_days < 0 or ahead_days < 0:
        raise PartitionError(
            f"ensure_partitions: back_days={back_days}, ahead_days={ahead_days}; "
            "both must be 0 or more"
        )
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    days = [today + timedelta(days=offset) for offset in range(-back_days, ahead_days + 1)]
    return ensure_partitions_for_days(conn, days, tables=tables)


def ensure_partitions_for_days(
    conn: psycopg.Connection,
    days: Iterable[date],
    *,
    tables: Sequence[str] = PARTITIONED_TABLES,
) -> list[str]:
    """Create the partitions missing for ``days`` in every table of ``tables``.

    Returns the names created. One transaction under the partition advisory lock; it
    does not block concurrent writers of the tables. ``conn`` must be idle.
    """
    wanted = sorted(set(days))
    if not wanted:
        return []
    _check_tables(tables)
    created: list[str] = []
    with own_transaction(conn, "ensure_partitions()"):
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, LOCK_PARTITIONS))
        existing = _partitions(conn, tables)
        for parent in tables:
            ranges = [(p.lower, p.upper) for p in existing if p.parent == parent]
            for day in wanted:
                lower, upper = day_start(day), day_start(day + timedelta(days=1))
                if any(_covers(bounds, lower, upper) for bounds in ranges):
                    continue
                _create(conn, parent, day, lower, upper)
                created.append(partition_name(parent, day))
    return created


def list_partitions(
    conn: psycopg.Connection, *, tables: Sequence[str] = PARTITIONED_TABLES
) -> list[PartitionInfo]:
    """The partitions of ``tables`` with bounds, row estimates and sizes, oldest first."""
    _check_tables(tables)
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        with conn.transaction():
            return _partitions(conn, tables)
    return _partitions(conn, tables)


def drop_partitions_older_than(
    conn: psycopg.Connection,
    retention_days: int,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    tables: Sequence[str] = PARTITIONED_TABLES,
) -> list[PartitionInfo]:
    """Drop partitions whose whole range is older than ``now - retention_days``.

    Returns what was dropped, or with ``dry_run`` what would be dropped (nothing is
    changed then). A partition is dropped only when its upper bound is at or before the
    cutoff, so no row younger than the retention is ever lost. ``conn`` must be idle; it
    is switched to autocommit while dropping (DETACH CONCURRENTLY needs that) and back.
    """
    if retention_days < 1:
        raise PartitionError(
            f"drop_partitions_older_than: retention_days={retention_days}; it must be at "
            "least 1 so that today's partition is never dropped"
        )
    _check_tables(tables)
    cutoff = (now or datetime.now(UTC)).astimezone(UTC) - timedelta(days=retention_days)
    require_idle(conn, "drop_partitions_older_than()")
    if dry_run:
        return _expired(list_partitions(conn, tables=tables), cutoff)
    was_autocommit = conn.autocommit
    conn.autocommit = True
    try:
        # a session lock: DETACH CONCURRENTLY cannot run inside a transaction block
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, LOCK_PARTITIONS))
        try:
            expired = _expired(_partitions(conn, tables), cutoff)
            for partition in expired:
                _detach_and_drop(conn, partition)
            _drop_count_hours(conn, expired)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, LOCK_PARTITIONS))
    finally:
        conn.autocommit = was_autocommit
    return expired


def _drop_count_hours(conn: psycopg.Connection, dropped: list[PartitionInfo]) -> None:
    # the hourly sums of dropped counts go with them: the OEE reader would otherwise
    # find sums for hours whose counts are gone (migrations/0007_count_hours.sql)
    uppers = [
        p.upper for p in dropped if p.parent == "lineside.production_counts" and p.upper is not None
    ]
    if uppers:
        conn.execute("DELETE FROM lineside.count_hours WHERE hour_end < %s", (max(uppers),))


def _expired(partitions: list[PartitionInfo], cutoff: datetime) -> list[PartitionInfo]:
    return [p for p in partitions if p.upper is not None and p.upper <= cutoff]


def _detach_and_drop(conn: psycopg.Connection, partition: PartitionInfo) -> None:
    parent, child = _ident(partition.parent), _ident(partition.name)
    mode = sql.SQL("FINALIZE" if partition.detach_pending else "CONCURRENTLY")
    conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {} {}").format(parent, child, mode))
    conn.execute(sql.SQL("DROP TABLE {}").format(child))


def _create(
    conn: psycopg.Connection, parent: str, day: date, lower: datetime, upper: datetime
) -> None:
    name = partition_name(parent, day)
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING STORAGE INCLUDING COMPRESSION)"
        ).format(_ident(name), _ident(parent))
    )
    try:
        conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                _ident(parent),
                _ident(name),
                sql.Literal(lower.isoformat()),
                sql.Literal(upper.isoformat()),
            )
        )
    except psycopg.errors.InvalidObjectDefinition as exc:
        raise PartitionError(
            f"cannot attach {name} for {day}: {exc.diag.message_primary}; a partition made "
            "by hand overlaps that day: give it whole-day bounds or drop it"
        ) from exc


def _partitions(conn: psycopg.Connection, tables: Sequence[str]) -> list[PartitionInfo]:
    # the bounds are printed in the session's TimeZone and DateStyle; casting them back
    # in the same session reads them correctly whatever those settings are
    rows = conn.execute(
        """
        SELECT pn.nspname || '.' || pc.relname,
               cn.nspname || '.' || c.relname,
               b.m[1]::timestamptz,
               b.m[2]::timestamptz,
               GREATEST(c.reltuples, COALESCE(s.n_live_tup, 0), 0)::bigint,
               pg_total_relation_size(c.oid),
               i.inhdetachpending
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          JOIN pg_namespace cn ON cn.oid = c.relnamespace
          JOIN pg_class pc ON pc.oid = i.inhparent
          JOIN pg_namespace pn ON pn.oid = pc.relnamespace
          LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
         CROSS JOIN LATERAL (
               SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                   'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS m
         ) b
         WHERE pn.nspname || '.' || pc.relname = ANY(%s)
        """,
        (list(tables),),
        binary=True,  # binary timestamps load whatever the session's DateStyle
    ).fetchall()
    result = []
    for parent, name, lower, upper, rows_estimate, size, pending in rows:
        result.append(
            PartitionInfo(parent, name, _utc(lower), _utc(upper), rows_estimate, size, pending)
        )
    far_past = datetime.min.replace(tzinfo=UTC)
    result.sort(key=lambda p: (p.lower or far_past, p.parent, p.name))
    return result


def _utc(value: datetime | None) -> datetime | None:
    # None: a DEFAULT partition, or MINVALUE/MAXVALUE bounds made by hand
    return None if value is None else value.astimezone(UTC)


def _covers(
    bounds: tuple[datetime | None, datetime | None], lower: datetime, upper: datetime
) -> bool:
    start, end = bounds
    return start is not None and end is not None and start <= lower and end >= upper


def _ident(qualified: str) -> sql.Identifier:
    schema, _, name = qualified.partition(".")
    return sql.Identifier(schema, name)


def _check_tables(tables: Sequence[str]) -> None:
    unknown = [table for table in tables if table not in PARTITIONED_TABLES]
    if unknown:
        raise PartitionError(
            f"not a partitioned table of the store: {', '.join(unknown)}; "
            f"choose from {', '.join(PARTITIONED_TABLES)}"
        )
