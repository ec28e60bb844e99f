"""The fact revision of a set of equipment over a window (cache validation).

See ``collector/store/migrations/0005_fact_revisions.sql``: every write raises the
revision of each (equipment, UTC day) it touches, so the sum over the days a window
covers changes whenever any fact in it may have changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg

_SUM = """
SELECT COALESCE(sum(revision), 0)::bigint FROM ops.fact_revisions
 WHERE equipment_id = ANY(%s) AND day BETWEEN %s AND %s
"""


def fact_revision(
    conn: psycopg.Connection, equipment_ids: Sequence[int], start: datetime, end: datetime
) -> int:
    """Sum of the revisions behind ``[start, end]`` (the end day too: a count made at
    exactly ``end`` belongs to the window)."""
    first = start.astimezone(UTC).date()
    last = end.astimezone(UTC).date()
    row = conn.execute(_SUM, (list(equipment_ids), first, last)).fetchone()
    return int(row[0]) if row else 0
