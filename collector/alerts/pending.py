"""Pending alert timers in PostgreSQL (migration 0009_alert_pending.sql).

A rule whose condition start is not in the facts (``oee_below``) counts its hold time
from the first evaluation that saw the condition hold. That start is kept in
``ops.alert_pending`` rather than in memory, so a collector restart does not start the
timer again, and every collector process evaluating the rules counts from the same
start. Each evaluation loads the timers, decides (``evaluate``), then saves what
changed: timers that ended (condition cleared, alert fired) are deleted, new ones
inserted. A timer another process inserted first is kept (the earlier start wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import psycopg

from .evaluate import Key

STALE_AFTER_S = 2 * 86_400.0
"""A timer older than this is one no rule uses any more: ``for_s`` is at most a day."""

_LOAD = "SELECT rule, subject, since FROM ops.alert_pending"
_DELETE = """
DELETE FROM ops.alert_pending
 WHERE (rule, subject) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""
_INSERT = """
INSERT INTO ops.alert_pending (rule, subject, since)
SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[])
ON CONFLICT (rule, subject) DO NOTHING
"""


def load_pending(conn: psycopg.Connection) -> dict[Key, datetime]:
    """Every pending timer: (rule, subject key) -> when the condition was first seen."""
    return {(rule, subject): since for rule, subject, since in conn.execute(_LOAD).fetchall()}


def save_pending(
    conn: psycopg.Connection, loaded: Mapping[Key, datetime], kept: Mapping[Key, datetime]
) -> None:
    """Store the change from ``loaded`` (what this evaluation read) to ``kept``."""
    ended = [key for key in loaded if key not in kept]
    started = [(key, since) for key, since in kept.items() if key not in loaded]
    if not ended and not started:
        return
    with conn.transaction():
        if ended:
            conn.execute(_DELETE, ([rule for rule, _ in ended], [subject for _, subject in ended]))
        if started:
            conn.execute(
                _INSERT,
                (
                    [rule for (rule, _), _ in started],
                    [subject for (_, subject), _ in started],
                    [since for _, since in started],
                ),
            )


def prune_stale_pending(conn: psycopg.Connection, older_than_s: float = STALE_AFTER_S) -> int:
    """Delete timers older than ``older_than_s`` (left by rules removed); how many."""
    cursor = conn.execute(
        "DELETE FROM ops.alert_pending WHERE since < now() - make_interval(secs => %s)",
        (older_than_s,),
    )
    return cursor.rowcount
