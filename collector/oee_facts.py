"""Read the facts the OEE engine needs for one equipment and window (``collector.oee``).

The shell between the store and the pure engine, downstream of both: the store never
imports the engine, the engine never does I/O.

State intervals come unclipped (a stop crossing the window edge is judged a micro-stop
by its whole length), found with the (equipment, start_time desc) index: the interval
in force an hour before the window start, then every interval starting after it. Counts
are those made in ``(start, end]``; runs those overlapping the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg

from collector.oee.count_pieces import count_cut_points
from collector.oee.inputs import (
    DEFAULT_SETTINGS,
    CountRecord,
    OeeInputs,
    OeeSettings,
    ProductionRun,
    StateInterval,
)
from collector.records import Equipment

# From an hour before the window (and the interval in force then): a stop episode of
# several intervals (unplanned_stop, then starved, ...) that began before the window is
# seen whole when it is shorter than an hour, so whether it is a micro-stop (threshold at
# most an hour) never depends on where the window starts.
_STATES = """
SELECT start_time, end_time, state, reason_code
  FROM lineside.state_intervals
 WHERE equipment_id = %(equipment)s
   AND start_time < %(end)s
   AND start_time >= COALESCE(
         (SELECT start_time FROM lineside.state_intervals
           WHERE equipment_id = %(equipment)s
             AND start_time <= %(start)s - interval '1 hour'
           ORDER BY start_time DESC LIMIT 1),
         %(start)s - interval '1 hour')
 ORDER BY start_time, seq, event_id
"""
_COUNTS = """
SELECT event_time, good, scrap, product_id
  FROM lineside.production_counts
 WHERE equipment_id = %(equipment)s AND event_time > %(start)s AND event_time <= %(end)s
 ORDER BY event_time
"""
# Counts summed per piece between cut points and product (see collector.oee.count_pieces):
# width_bucket counts the cuts <= its operand; one microsecond less makes that "< t",
# so a count at exactly a cut point joins the piece that ends there ((lo, hi] pieces).
# Whole hours without a cut inside come from the hourly sums (lineside.count_hours,
# hours (hour_end - 1 h, hour_end]); the hours a cut falls into ("dirty") from the raw
# counts. A sum's last_time lies in its hour, so it lands in the same piece as its counts.
_COUNT_SUMS = """
WITH dirty AS (
    SELECT DISTINCT date_trunc('hour', c - interval '1 microsecond') + interval '1 hour'
           AS hour_end
      FROM unnest(%(cuts)s::timestamptz[]) AS c
     WHERE c <> date_trunc('hour', c)
), parts AS (
    SELECT h.last_time AS t, h.good, h.scrap, h.product_id
      FROM lineside.count_hours h
     WHERE h.equipment_id = %(equipment)s
       AND h.hour_end > %(start)s AND h.hour_end <= %(end)s
       AND h.hour_end NOT IN (SELECT hour_end FROM dirty)
    UNION ALL
    SELECT c.event_time, c.good, c.scrap, c.product_id
      FROM dirty d
      JOIN lineside.production_counts c
        ON c.equipment_id = %(equipment)s
       AND c.event_time > d.hour_end - interval '1 hour' AND c.event_time <= d.hour_end
     WHERE c.event_time > %(start)s AND c.event_time <= %(end)s
)
SELECT max(t), sum(good)::bigint, sum(scrap)::bigint, product_id
  FROM parts
 GROUP BY width_bucket(t - interval '1 microsecond', %(cuts)s::timestamptz[]), product_id
 ORDER BY 1
"""
_RUNS = """
SELECT start_time, end_time, product_id, ideal_cycle_time_s
  FROM lineside.production_runs
 WHERE equipment_id = %(equipment)s AND start_time < %(end)s
   AND (end_time IS NULL OR end_time > %(start)s)
 ORDER BY start_time
"""


def equipment_id(conn: psycopg.Connection, equipment: Equipment) -> int | None:
    """The id the store gave this ISA-95 path, None if no event of it was stored."""
    row = conn.execute(
        "SELECT id FROM lineside.equipment WHERE enterprise = %s AND site = %s AND area = %s "
        "AND line = %s AND equipment = %s",
        tuple(equipment),
    ).fetchone()
    return None if row is None else int(row[0])


def read_oee_inputs(
    conn: psycopg.Connection,
    equipment: int,
    start: datetime,
    end: datetime,
    *,
    boundaries: Sequence[datetime] | None = None,
    settings: OeeSettings = DEFAULT_SETTINGS,
) -> OeeInputs:
    """States, counts and runs of ``equipment`` for the window ``[start, end)`` (24/7: the
    calendar's planned time and breaks are the caller's to add).

    With the bucket ``boundaries`` (and the ``settings``) the engine will use, counts come
    summed in SQL per piece between cut points (``collector.oee.count_pieces``): the same
    result from a few hundred rows instead of one row per count.
    """
    # never prepared: a generic plan knows no window, so it cannot prune partitions
    # or pick the index range (seen: 50x slower after psycopg's fifth execution)
    params = {"equipment": equipment, "start": start, "end": end}
    states = [
        StateInterval(row[0], row[1], row[2], row[3])
        for row in conn.execute(_STATES, params, prepare=False).fetchall()
    ]
    runs = [
        ProductionRun(row[0], row[1], row[2], row[3])
        for row in conn.execute(_RUNS, params, prepare=False).fetchall()
    ]
    if boundaries is None:
        rows = conn.execute(_COUNTS, params, prepare=False).fetchall()
    else:
        cuts = count_cut_points(runs, boundaries, settings)
        rows = conn.execute(_COUNT_SUMS, {**params, "cuts": cuts}, prepare=False).fetchall()
    counts = [CountRecord(row[0], int(row[1]), int(row[2]), row[3]) for row in rows]
    return OeeInputs(states=states, counts=counts, runs=runs)
