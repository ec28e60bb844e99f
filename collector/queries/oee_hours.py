"""OEE components per equipment and hour, computed ahead (lineside.oee_hours).

The storage side of the materialized hours (migrations/0008_oee_hours.sql): turning
``OeeComponents`` into rows and back, which days are still valid, and the sums of the
valid hours per bucket, added up by PostgreSQL. ``collector.queries.materialize``
computes the rows; ``collector.queries.oee`` reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

import psycopg

from collector.oee import OeeComponents

HOUR = timedelta(hours=1)
# pg_advisory_xact_lock(class, equipment id) while a day's hours are replaced; its own
# class (see collector/store/_tx.py for the others)
LOCK_CLASS_OEE_HOURS = 0x4C55

#: OeeComponents field -> lineside.oee_hours column (the additive scalars).
SCALARS = (
    ("all_time_us", "all_time_us"),
    ("planned_time_us", "planned_time_us"),
    ("planned_downtime_breaks_us", "pd_breaks_us"),
    ("planned_downtime_states_us", "pd_states_us"),
    ("unscheduled_running_us", "unscheduled_us"),
    ("planned_busy_time_us", "pbt_us"),
    ("actual_production_time_us", "apt_us"),
    ("running_us", "running_us"),
    ("micro_stop_us", "micro_stop_us"),
    ("performance_state_us", "performance_us"),
    ("downtime_us", "downtime_us"),
    ("setup_us", "setup_us"),
    ("offline_us", "offline_us"),
    ("no_data_us", "no_data_us"),
    ("good", "good"),
    ("scrap", "scrap"),
    ("startup_scrap", "startup_scrap"),
    ("parts_without_ideal_cycle_time", "without_ict"),
)
IDEALS = (
    ("good_ideal_time_s", "good_ideal_s"),
    ("scrap_ideal_time_s", "scrap_ideal_s"),
    ("startup_scrap_ideal_time_s", "startup_ideal_s"),
)


class NotDecimal(ValueError):
    """A fraction with no finite decimal expansion (cannot be stored exactly)."""


def to_decimal(value: Fraction) -> Decimal:
    """The exact decimal of a fraction whose denominator is 2^a 5^b (every sum of
    counts x binary float cycle times is); NotDecimal otherwise."""
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        raise NotDecimal(f"{value} has no finite decimal expansion")
    digits = max(twos, fives)
    return Decimal(value.numerator * (10**digits // value.denominator)).scaleb(-digits)


# ---- writing -----------------------------------------------------------------------------

_INSERT_HOUR = f"""
INSERT INTO lineside.oee_hours (equipment_id, hour_end, day,
    {", ".join(c for _, c in SCALARS)}, {", ".join(c for _, c in IDEALS)}, unknown_states)
VALUES (%s, %s, %s, {", ".join(["%s"] * (len(SCALARS) + len(IDEALS) + 1))})
"""
_INSERT_LOSS = """
INSERT INTO lineside.oee_hour_losses (equipment_id, hour_end, day, kind, state, reason_code,
                                      time_us)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""


def store_day(
    conn: psycopg.Connection,
    equipment_id: int,
    day: date,
    hours: Sequence[OeeComponents],
    fingerprint: str,
    revision: int,
) -> bool:
    """Replace the day's 24 hour rows (one transaction); ``revision`` is the day's fact
    revision read before the hours were computed. False when another collector is
    storing hours of this equipment right now (it will have them)."""
    if len(hours) != 24:
        raise ValueError(f"a day has 24 hours, got {len(hours)}")
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    hour_rows, loss_rows = [], []
    for i, c in enumerate(hours):
        hour_end = midnight + (i + 1) * HOUR
        hour_rows.append(
            (
                equipment_id,
                hour_end,
                day,
                *(getattr(c, field) for field, _ in SCALARS),
                *(to_decimal(getattr(c, field)) for field, _ in IDEALS),
                sorted(c.unknown_states),
            )
        )
        for state, time_us in c.downtime_by_state_us.items():
            loss_rows.append((equipment_id, hour_end, day, "d", state, None, time_us))
        for (state, reason), time_us in c.stops_by_reason_us.items():
            loss_rows.append((equipment_id, hour_end, day, "s", state, reason, time_us))
    with conn.transaction(), conn.cursor() as cur:
        # collectors computing the same day side by side: one stores it, the other skips
        locked = cur.execute(
            "SELECT pg_try_advisory_xact_lock(%s, %s)", (LOCK_CLASS_OEE_HOURS, equipment_id)
        ).fetchone()
        if not (locked and locked[0]):
            return False
        span = (equipment_id, midnight, midnight + 24 * HOUR)
        cur.execute(
            "DELETE FROM lineside.oee_hours WHERE equipment_id = %s"
            " AND hour_end > %s AND hour_end <= %s",
            span,
        )
        cur.execute(
            "DELETE FROM lineside.oee_hour_losses WHERE equipment_id = %s"
            " AND hour_end > %s AND hour_end <= %s",
            span,
        )
        cur.executemany(_INSERT_HOUR, hour_rows)
        if loss_rows:
            cur.executemany(_INSERT_LOSS, loss_rows)
        cur.execute(
            "INSERT INTO lineside.oee_days (equipment_id, day, fingerprint, revision)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (equipment_id, day) DO UPDATE"
            " SET fingerprint = EXCLUDED.fingerprint, revision = EXCLUDED.revision,"
            " computed_at = now()",
            (equipment_id, day, fingerprint, revision),
        )
    return True


# ---- reading -----------------------------------------------------------------------------

_DAYS = """
SELECT d.equipment_id, d.day,
       d.fingerprint = %(fingerprint)s AND d.revision = COALESCE(r.revision, 0)
  FROM lineside.oee_days d
  LEFT JOIN ops.fact_revisions r ON r.equipment_id = d.equipment_id AND r.day = d.day
 WHERE d.equipment_id = ANY(%(equipment)s) AND d.day BETWEEN %(first)s AND %(last)s
"""


@dataclass(frozen=True)
class StoredDays:
    """Days with stored hours, per equipment: still right (``valid``) or not (``stale``:
    a later write or other master data; their rows wait to be computed again)."""

    valid: dict[int, set[date]]
    stale: list[tuple[int, date]]


def stored_days(
    conn: psycopg.Connection,
    equipment_ids: Sequence[int],
    fingerprint: str,
    first: date,
    last: date,
) -> StoredDays:
    """Which stored days in ``[first, last]`` may be used."""
    rows = conn.execute(
        _DAYS,
        {
            "equipment": list(equipment_ids),
            "first": first,
            "last": last,
            "fingerprint": fingerprint,
        },
        prepare=False,
    ).fetchall()
    valid: dict[int, set[date]] = {}
    stale = []
    for equipment_id, day, ok in rows:
        if ok:
            valid.setdefault(equipment_id, set()).add(day)
        else:
            stale.append((equipment_id, day))
    return StoredDays(valid, stale)


def valid_days(
    conn: psycopg.Connection,
    equipment_ids: Sequence[int],
    fingerprint: str,
    first: date,
    last: date,
) -> dict[int, set[date]]:
    """Per equipment, the days in ``[first, last]`` whose stored hours are still right."""
    return stored_days(conn, equipment_ids, fingerprint, first, last).valid


# An hour [hour_end - 1 h, hour_end) is used when it lies inside the window, its day is
# not stale (rows exist only for computed days) and no bucket boundary falls inside it:
# width_bucket counts the boundaries <= its operand, so equal counts at its start and its
# last microsecond mean one bucket. The first line is the primary key's range.
# Summed twice in one pass (GROUPING SETS): per bucket over the whole scope, and per
# equipment over the whole window.
_USED = """
 WHERE {t}.equipment_id = ANY(%(equipment)s)
   AND {t}.hour_end > %(start)s AND {t}.hour_end <= %(end)s
   AND {t}.hour_end - interval '1 hour' >= %(start)s
   AND ({t}.equipment_id, {t}.day) NOT IN (
         SELECT * FROM unnest(%(stale_ids)s::integer[], %(stale_days)s::date[]))
   AND width_bucket({t}.hour_end - interval '1 hour', %(bounds)s::timestamptz[])
     = width_bucket({t}.hour_end - interval '1 microsecond', %(bounds)s::timestamptz[])
"""
_BUCKET = "width_bucket({t}.hour_end - interval '1 hour', %(bounds)s::timestamptz[])"
_SUMS = f"""
SELECT GROUPING(h.equipment_id), {_BUCKET.format(t="h")}, h.equipment_id,
       {", ".join(f"sum({c})" for _, c in SCALARS + IDEALS)},
       string_agg(NULLIF(array_to_string(h.unknown_states, chr(31)), ''), chr(31))
  FROM lineside.oee_hours h
{_USED.format(t="h")}
 GROUP BY GROUPING SETS (({_BUCKET.format(t="h")}), (h.equipment_id))
"""
_LOSSES = f"""
SELECT GROUPING(l.equipment_id), {_BUCKET.format(t="l")}, l.equipment_id,
       l.kind, l.state, l.reason_code, sum(l.time_us)
  FROM lineside.oee_hour_losses l
{_USED.format(t="l")}
 GROUP BY GROUPING SETS (({_BUCKET.format(t="l")}, l.kind, l.state, l.reason_code),
                         (l.equipment_id, l.kind, l.state, l.reason_code))
"""


def scope_sums(
    conn: psycopg.Connection,
    days: StoredDays,
    bounds: Sequence[datetime],
) -> tuple[dict[int, OeeComponents], dict[int, OeeComponents]]:
    """Components of the stored hours of the valid days: per bucket (index into
    ``bounds``) over all the equipment, and per equipment over all buckets."""
    if not days.valid:
        return {}, {}
    params = {
        "equipment": sorted(days.valid),
        "stale_ids": [e for e, _ in days.stale],
        "stale_days": [d for _, d in days.stale],
        "start": bounds[0],
        "end": bounds[-1],
        "bounds": list(bounds),
    }
    maps: dict[tuple[int, int], tuple[dict, dict]] = {}
    # GROUPING(h.equipment_id) is 1 in the per-bucket rows, 0 in the per-equipment rows
    for grouping, bucket, equipment_id, kind, state, reason, time_us in conn.execute(
        _LOSSES, params, prepare=False
    ).fetchall():
        key = (0, bucket - 1) if grouping else (1, equipment_id)
        down, stops = maps.setdefault(key, ({}, {}))
        if kind == "d":
            down[state] = int(time_us)
        else:
            stops[(state, reason)] = int(time_us)
    by_bucket: dict[int, OeeComponents] = {}
    by_equipment_out: dict[int, OeeComponents] = {}
    n = len(SCALARS)
    for row in conn.execute(_SUMS, params, prepare=False).fetchall():
        grouped_by_bucket, bucket, equipment_id, values = row[0], row[1], row[2], row[3:]
        key = (0, bucket - 1) if grouped_by_bucket else (1, equipment_id)
        down, stops = maps.get(key, ({}, {}))
        components = OeeComponents(
            **{field: int(values[i]) for i, (field, _) in enumerate(SCALARS)},
            **{field: Fraction(values[n + i]) for i, (field, _) in enumerate(IDEALS)},
            downtime_by_state_us=MappingProxyType(down),
            stops_by_reason_us=MappingProxyType(stops),
            unknown_states=frozenset(values[-1].split("\x1f")) if values[-1] else frozenset(),
        )
        if grouped_by_bucket:
            by_bucket[bucket - 1] = components
        else:
            by_equipment_out[equipment_id] = components
    return by_bucket, by_equipment_out
