"""Sequence gaps in PostgreSQL: read open gaps, apply :mod:`.gaps` plans, count for metrics.

Called by the writer inside its transaction, after it took the per-equipment advisory
locks, so the open gaps read here cannot change until it commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import psycopg
from psycopg.pq import TransactionStatus

from .gaps import GapPlan, OpenGap

Stream = tuple[str, int]
"""(agent_id, equipment_id)"""

_SELECT_OPEN = """
SELECT g.agent_id, g.equipment_id, g.id, g.first_seq, g.last_seq, g.detected_at
  FROM ops.sequence_gaps g
  JOIN unnest(%s::text[], %s::integer[]) AS w(agent_id, equipment_id)
    ON g.agent_id = w.agent_id AND g.equipment_id = w.equipment_id
 WHERE g.closed_at IS NULL
 ORDER BY g.agent_id, g.equipment_id, g.first_seq
"""

_APPLY = """
WITH changed AS (
    UPDATE ops.sequence_gaps g
       SET first_seq = u.first_seq, last_seq = u.last_seq,
           closed_by = u.closed_by,
           closed_at = CASE WHEN u.closed_by IS NOT NULL THEN now() END
      FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[])
           AS u(id, first_seq, last_seq, closed_by)
     WHERE g.id = u.id
)
INSERT INTO ops.sequence_gaps (agent_id, equipment_id, first_seq, last_seq, detected_at,
                               closed_at, closed_by)
SELECT agent_id, equipment_id, first_seq, last_seq, COALESCE(detected_at, now()),
       CASE WHEN closed_by IS NOT NULL THEN now() END, closed_by
  FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::bigint[], %s::timestamptz[],
              %s::text[])
       AS n(agent_id, equipment_id, first_seq, last_seq, detected_at, closed_by)
"""


@dataclass(frozen=True)
class OpenGapCount:
    """Open gaps over all streams, for a metric."""

    gaps: int
    missing_events: int
    """Seqs inside open gaps (events that may still arrive)."""


def read_open_gaps(
    conn: psycopg.Connection, streams: Iterable[Stream]
) -> dict[Stream, list[OpenGap]]:
    """The open gaps of ``streams``, ordered by first seq."""
    wanted = sorted(set(streams))
    found: dict[Stream, list[OpenGap]] = {stream: [] for stream in wanted}
    if not wanted:
        return found
    rows = conn.execute(
        _SELECT_OPEN, ([agent for agent, _ in wanted], [eq for _, eq in wanted])
    ).fetchall()
    for agent_id, equipment_id, gap_id, first, last, detected_at in rows:
        found[(agent_id, equipment_id)].append(OpenGap(gap_id, first, last, detected_at))
    return found


def apply_gap_plans(conn: psycopg.Connection, plans: Mapping[Stream, GapPlan]) -> None:
    """Write the updates and new rows of ``plans`` in one statement (no-op when empty)."""
    updates = [update for plan in plans.values() for update in plan.updates]
    inserts = [(stream, row) for stream, plan in plans.items() for row in plan.inserts]
    if not updates and not inserts:
        return
    conn.execute(
        _APPLY,
        (
            [u.gap_id for u in updates],
            [u.first for u in updates],
            [u.last for u in updates],
            [u.closed_by for u in updates],
            [stream[0] for stream, _ in inserts],
            [stream[1] for stream, _ in inserts],
            [row.first for _, row in inserts],
            [row.last for _, row in inserts],
            [row.detected_at for _, row in inserts],
            [row.closed_by for _, row in inserts],
        ),
    )


def count_open_gaps(conn: psycopg.Connection) -> OpenGapCount:
    """How many gaps are open and how many seqs they hold (for the collector's metrics).

    Works on an idle connection (its own short transaction) or inside the caller's.
    """
    query = (
        "SELECT count(*), COALESCE(sum(last_seq - first_seq + 1), 0)::bigint "
        "FROM ops.sequence_gaps WHERE closed_at IS NULL"
    )
    if conn.info.transaction_status == TransactionStatus.IDLE:
        with conn.transaction():
            row = conn.execute(query).fetchone()
    else:
        row = conn.execute(query).fetchone()
    assert row is not None
    return OpenGapCount(gaps=row[0], missing_events=row[1])
