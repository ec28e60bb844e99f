"""Reading dead letters back (for ``oee-collector dead-letters``) and marking replays.

The writer stores them (:func:`collector.store.write`); this module only reads and marks.
Each function runs in its own short transaction on an idle connection, or inside the
caller's transaction when one is open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

_COLUMNS = (
    "id, received_at, stored_at, topic, reason, detail, agent_id, batch_id, payload, "
    "payload_bytes, replayed_at"
)


@dataclass(frozen=True)
class DeadLetterRow:
    """One stored dead letter."""

    id: int
    received_at: datetime
    stored_at: datetime
    topic: str
    reason: str
    detail: str
    agent_id: str | None
    batch_id: str | None
    payload: bytes
    """At most the writer's ``payload_cap_bytes`` of what was received."""
    payload_bytes: int
    """Size of the payload as received."""
    replayed_at: datetime | None

    @property
    def complete(self) -> bool:
        """True when the whole payload was kept (it was not cut at the cap)."""
        return len(self.payload) == self.payload_bytes


def list_dead_letters(
    conn: psycopg.Connection,
    *,
    reason: str | None = None,
    include_replayed: bool = False,
    limit: int = 50,
) -> list[DeadLetterRow]:
    """The newest dead letters first, optionally of one ``reason`` only."""
    query = f"""
        SELECT {_COLUMNS} FROM ops.dead_letters
         WHERE (%(reason)s::text IS NULL OR reason = %(reason)s)
           AND (%(all)s OR replayed_at IS NULL)
         ORDER BY received_at DESC, id DESC
         LIMIT %(limit)s
    """
    params = {"reason": reason, "all": include_replayed, "limit": limit}
    return [DeadLetterRow(*row) for row in _read(conn, query, params)]


def get_dead_letters(conn: psycopg.Connection, ids: Sequence[int]) -> list[DeadLetterRow]:
    """The dead letters with these ids, in id order (unknown ids are left out)."""
    query = f"SELECT {_COLUMNS} FROM ops.dead_letters WHERE id = ANY(%(ids)s) ORDER BY id"
    return [DeadLetterRow(*row) for row in _read(conn, query, {"ids": list(ids)})]


def mark_replayed(conn: psycopg.Connection, ids: Sequence[int]) -> int:
    """Set ``replayed_at`` (now) on the dead letters not marked yet; returns how many."""
    query = (
        "UPDATE ops.dead_letters SET replayed_at = now() WHERE id = ANY(%s) AND replayed_at IS NULL"
    )
    if conn.info.transaction_status == TransactionStatus.IDLE:
        with conn.transaction():
            return conn.execute(query, (list(ids),)).rowcount
    return conn.execute(query, (list(ids),)).rowcount


def _read(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    if conn.info.transaction_status == TransactionStatus.IDLE:
        with conn.transaction():
            return conn.execute(query, params).fetchall()
    return conn.execute(query, params).fetchall()
