"""Transaction helpers shared by the store modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.pq import TransactionStatus

from .errors import ConnectionStateError

# Keys of pg_advisory_xact_lock(int4, int4): (LOCK_CLASS, what). The class is a fixed,
# unlikely number so the store's locks do not collide with other users of the database.
LOCK_CLASS = 0x4C53  # "LS"
LOCK_MIGRATIONS = 1
LOCK_PARTITIONS = 2
# per-equipment write locks use their own class so equipment ids cannot collide with the above
LOCK_CLASS_EQUIPMENT = 0x4C54


def require_idle(conn: psycopg.Connection, what: str) -> None:
    """Refuse a connection inside a transaction: our ``transaction()`` block would then be
    a savepoint, and the caller's COMMIT (not ours) would decide what is durable."""
    status = conn.info.transaction_status
    if status != TransactionStatus.IDLE:
        raise ConnectionStateError(
            f"{what}: the connection is not idle (transaction status {status.name}); "
            "pass a connection outside any transaction (autocommit=True is simplest) so "
            f"{what} can begin and commit its own transaction"
        )


@contextmanager
def own_transaction(conn: psycopg.Connection, what: str) -> Iterator[None]:
    """BEGIN ... COMMIT owned by the caller of this helper (rolled back on error)."""
    require_idle(conn, what)
    with conn.transaction():
        yield
