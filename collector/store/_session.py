"""What the writer remembers per connection, so steady-state writes skip the lookups.

* equipment ids (an equipment row is never deleted, so a cached id stays right);
* days known to have partitions in every partitioned table;
* whether this connection's staging table exists.

Entries are added only after the transaction that made them true has committed. A
connection that is closed and garbage-collected drops its entry (weak keys). If the
database changes behind the cache (a partition dropped by retention, the session reset
by ``DISCARD ALL``), the writer sees the error, calls :meth:`Session.forget` and
retries once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

import psycopg

from collector.records import Equipment

_sessions: WeakKeyDictionary[psycopg.Connection, Session] = WeakKeyDictionary()
_sessions_lock = threading.Lock()  # writer threads (one connection each) share the mapping


@dataclass
class Session:
    """Per-connection caches of the writer."""

    equipment_ids: dict[Equipment, int] = field(default_factory=dict)
    partition_days: set[int] = field(default_factory=set)
    """Epoch day numbers (``ms // 86_400_000``) whose partitions exist."""
    staging_ready: bool = False

    def forget(self) -> None:
        """Drop everything cached (after an error that suggests the cache is stale)."""
        self.equipment_ids.clear()
        self.partition_days.clear()
        self.staging_ready = False


def session_for(conn: psycopg.Connection) -> Session:
    """The cache of ``conn`` (created on first use)."""
    with _sessions_lock:
        session = _sessions.get(conn)
        if session is None:
            session = _sessions[conn] = Session()
        return session


def forget_connection(conn: psycopg.Connection) -> None:
    """Drop what the writer cached for ``conn`` (for example after ``DISCARD ALL``)."""
    with _sessions_lock:
        _sessions.pop(conn, None)
