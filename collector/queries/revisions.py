"""The fact revision of a scope over a window (cache validation).

See ``collector/store/migrations/0005_fact_revisions.sql``: every write raises the
revision of each (equipment, UTC day) it touches, so the sum over the days a window
covers changes whenever any fact in it may have changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg


def _scope_sql(levels: Sequence[str]) -> str:
    names = ("site", "area", "line", "equipment")[: len(levels)]
    where = " AND ".join(f"e.{name} = %s" for name in names)
    return (
        "SELECT count(*), COALESCE(sum(r.total), 0)::bigint FROM lineside.equipment e"
        " LEFT JOIN LATERAL (SELECT sum(revision) AS total FROM ops.fact_revisions f"
        "   WHERE f.equipment_id = e.id AND f.day BETWEEN %s AND %s) r ON true"
        f" WHERE {where}"
    )


async def scope_revision(
    conn: psycopg.AsyncConnection, levels: Sequence[str], start: datetime, end: datetime
) -> tuple[int, int]:
    """(number of equipment, fact revision) of the scope with path ``levels`` (site,
    area, line, equipment: as many as the scope has) over ``[start, end]``, in one round
    trip: what an answer cache checks before serving an answer. The end day counts too:
    a count made at exactly ``end`` belongs to the window."""
    cursor = await conn.execute(
        _scope_sql(levels),
        (start.astimezone(UTC).date(), end.astimezone(UTC).date(), *levels),
    )
    row = await cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)
