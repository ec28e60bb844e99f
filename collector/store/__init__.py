"""PostgreSQL storage of the collector: migrations, events and facts, partitions, gaps.

Typical use (one connection per writer thread, autocommit)::

    conn = psycopg.connect(dsn, autocommit=True)
    apply_migrations(conn)
    ensure_partitions(conn, back_days=1, ahead_days=3)
    result = write(conn, batches, dead_letters)   # committed when it returns
"""

from __future__ import annotations

from ._session import forget_connection
from .errors import (
    ConnectionStateError,
    MigrationError,
    PartitionError,
    StoreError,
    UnstorableBatchError,
)
from .migrate import Migration, apply_migrations, load_migrations
from .partitions import (
    PARTITIONED_TABLES,
    PartitionInfo,
    drop_partitions_older_than,
    ensure_partitions,
    ensure_partitions_for_days,
    list_partitions,
    partition_name,
)
from .sequence_gaps import OpenGapCount, count_open_gaps
from .writer import DEFAULT_PAYLOAD_CAP_BYTES, WriteResult, write

__all__ = [
    "DEFAULT_PAYLOAD_CAP_BYTES",
    "PARTITIONED_TABLES",
    "ConnectionStateError",
    "Migration",
    "MigrationError",
    "OpenGapCount",
    "PartitionError",
    "PartitionInfo",
    "StoreError",
    "UnstorableBatchError",
    "WriteResult",
    "apply_migrations",
    "count_open_gaps",
    "drop_partitions_older_than",
    "ensure_partitions",
    "ensure_partitions_for_days",
    "forget_connection",
    "list_partitions",
    "load_migrations",
    "partition_name",
    "write",
]
