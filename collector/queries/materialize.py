"""Compute OEE hours ahead: past UTC days of every equipment into lineside.oee_hours.

Run by the collector's maintenance thread (``oee-collector run``); each pass finds the
days whose stored hours are missing or no longer valid (a write raised the day's fact
revision, or the master data changed) and recomputes a bounded number of them, newest
first. Today is never stored: it changes with every write and is computed on demand.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import psycopg

from collector.masterdata import MasterData
from collector.oee.engine import compute_components_buckets
from collector.queries.oee import equipment_inputs
from collector.queries.oee_hours import HOUR, NotDecimal, store_day
from collector.queries.scope import EquipmentRef, list_equipment

log = logging.getLogger(__name__)

_STALE_DAYS = """
SELECT e.id, d.day::date
  FROM lineside.equipment e
 CROSS JOIN LATERAL generate_series(
        GREATEST(e.first_seen AT TIME ZONE 'UTC', %(oldest)s::timestamp)::date,
        LEAST(e.last_seen AT TIME ZONE 'UTC', %(yesterday)s::timestamp)::date,
        interval '1 day') AS d(day)
  LEFT JOIN lineside.oee_days o ON o.equipment_id = e.id AND o.day = d.day::date
  LEFT JOIN ops.fact_revisions r ON r.equipment_id = e.id AND r.day = d.day::date
 WHERE o.day IS NULL OR o.fingerprint <> %(fingerprint)s
    OR o.revision <> COALESCE(r.revision, 0)
 ORDER BY d.day DESC, e.id
 LIMIT %(limit)s
"""


def materialize_day(
    conn: psycopg.Connection, masterdata: MasterData, ref: EquipmentRef, day: date
) -> bool:
    """Compute and store the 24 hours of ``day`` (UTC) of one equipment; False when its
    components cannot be stored exactly (then readers keep computing that day) or
    another collector is storing this equipment's hours at the moment."""
    row = conn.execute(
        "SELECT revision FROM ops.fact_revisions WHERE equipment_id = %s AND day = %s",
        (ref.id, day),
    ).fetchone()
    revision = int(row[0]) if row else 0  # read first: a write meanwhile makes it stale
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    bounds = [midnight + i * HOUR for i in range(25)]
    inputs = equipment_inputs(conn, masterdata, ref, bounds)
    hours = compute_components_buckets(inputs, bounds, masterdata.settings)
    try:
        return store_day(conn, ref.id, day, hours, masterdata.fingerprint, revision)
    except NotDecimal:
        log.warning("event=oee_hours_not_stored equipment=%s day=%s", ref.key, day)
        return False


def materialize_stale_days(
    conn: psycopg.Connection,
    masterdata: MasterData,
    *,
    days_back: int,
    limit: int,
    now: datetime | None = None,
) -> int:
    """Recompute up to ``limit`` missing or stale past days (of the last ``days_back``
    days); returns how many were stored."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    today = now.date()
    yesterday_end = datetime(today.year, today.month, today.day) - timedelta(microseconds=1)
    oldest = datetime(today.year, today.month, today.day) - timedelta(days=days_back)
    rows = conn.execute(
        _STALE_DAYS,
        {
            "oldest": oldest,
            "yesterday": yesterday_end,
            "fingerprint": masterdata.fingerprint,
            "limit": limit,
        },
    ).fetchall()
    if not rows:
        return 0
    refs = {ref.id: ref for ref in list_equipment(conn)}
    stored = 0
    for equipment_id, day in rows:
        ref = refs.get(equipment_id)
        if ref is not None and materialize_day(conn, masterdata, ref, day):
            stored += 1
    return stored
