"""State timelines, current states and process-value history of stored equipment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from collector.queries.scope import EquipmentRef, ref_from_row

#: Most rows one timeline or history answer carries (the caller narrows the window).
MAX_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class StateSpan:
    """A state of one equipment over ``[start, end)``, clipped to the asked window."""

    start: datetime
    end: datetime
    state: str
    reason_code: int | None
    open: bool
    """True for the state in force now (its end is the asked window's end)."""


@dataclass(frozen=True, slots=True)
class CurrentState:
    """The state an equipment is in now, since when, and when it was last heard of."""

    equipment: EquipmentRef
    state: str | None
    since: datetime | None
    reason_code: int | None
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class ProcessValue:
    """One sample of a tag (``value`` keeps its JSON type)."""

    time: datetime
    value: float | str | bool | None
    unit: str | None
    quality: str


_TIMELINE = """
SELECT start_time, end_time, state, reason_code
  FROM lineside.state_intervals
 WHERE equipment_id = %(equipment)s
   AND start_time < %(end)s
   AND start_time >= COALESCE(
         (SELECT start_time FROM lineside.state_intervals
           WHERE equipment_id = %(equipment)s AND start_time <= %(start)s
           ORDER BY start_time DESC LIMIT 1),
         %(start)s)
 ORDER BY start_time, seq, event_id
 LIMIT %(limit)s
"""


def state_timeline(
    conn: psycopg.Connection, ref: EquipmentRef, start: datetime, end: datetime
) -> tuple[list[StateSpan], bool]:
    """States of ``ref`` over ``[start, end)``, clipped; and whether rows were cut off."""
    rows = conn.execute(
        _TIMELINE,
        {"equipment": ref.id, "start": start, "end": end, "limit": MAX_ROWS + 1},
        prepare=False,  # see collector.oee_facts: generic plans cannot prune by window
    ).fetchall()
    truncated = len(rows) > MAX_ROWS
    spans = []
    for row_start, row_end, state, reason in rows[:MAX_ROWS]:
        lo = max(row_start, start)
        hi = end if row_end is None else min(row_end, end)
        if lo < hi:
            spans.append(StateSpan(lo, hi, state, reason, row_end is None))
    return spans, truncated


_CURRENT = """
SELECT e.id, e.enterprise, e.site, e.area, e.line, e.equipment, e.last_seen,
       s.state, s.start_time, s.reason_code
  FROM lineside.equipment e
  LEFT JOIN LATERAL (
        SELECT state, start_time, reason_code FROM lineside.state_intervals i
         WHERE i.equipment_id = e.id AND i.end_time IS NULL
         ORDER BY start_time DESC LIMIT 1) s ON true
 WHERE %(sites)s::text[] IS NULL OR e.site = ANY(%(sites)s::text[])
 ORDER BY e.site, e.area, e.line, e.equipment
"""


def current_states(conn: psycopg.Connection, sites: list[str] | None = None) -> list[CurrentState]:
    """Every stored equipment's current state (of ``sites`` only, when given)."""
    out = []
    for row in conn.execute(_CURRENT, {"sites": sites}).fetchall():
        out.append(CurrentState(ref_from_row(row[:6]), row[7], row[8], row[9], row[6]))
    return out


_HISTORY = """
SELECT event_time, value_num, value_text, value_bool, unit, quality
  FROM lineside.process_values
 WHERE equipment_id = %(equipment)s AND tag = %(tag)s
   AND event_time >= %(start)s AND event_time < %(end)s
 ORDER BY event_time
 LIMIT %(limit)s
"""


def process_values(
    conn: psycopg.Connection,
    ref: EquipmentRef,
    tag: str,
    start: datetime,
    end: datetime,
    limit: int,
) -> tuple[list[ProcessValue], bool]:
    """Samples of ``tag`` over ``[start, end)`` in time order (at most ``limit``), and
    whether more were there."""
    rows = conn.execute(
        _HISTORY,
        {"equipment": ref.id, "tag": tag, "start": start, "end": end, "limit": limit + 1},
        prepare=False,
    ).fetchall()
    values = [
        ProcessValue(t, num if num is not None else text if text is not None else flag, unit, q)
        for t, num, text, flag, unit, q in rows[:limit]
    ]
    return values, len(rows) > limit


def equipment_tags(conn: psycopg.Connection, ref: EquipmentRef, since: datetime) -> list[str]:
    """Tags of ``ref`` with samples since ``since`` (for a trend picker)."""
    rows = conn.execute(
        "SELECT DISTINCT tag FROM lineside.process_values"
        " WHERE equipment_id = %s AND event_time >= %s ORDER BY tag",
        (ref.id, since),
        prepare=False,
    ).fetchall()
    return [row[0] for row in rows]
