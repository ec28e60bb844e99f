"""OEE reports: one scope, one window, cut into buckets, from the stored facts.

Every equipment of the scope is computed on its own (its line's shift calendar, its
products' ideal cycle times) over the same bucket boundaries; line, area and site
figures are the sums of their equipment's components (``collector.oee.rollup``), never
averages of percentages.

The window is clipped to ``as_of`` (now): the future has no facts yet, and an open
state interval must not count as running until the end of a shift that is not over.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import psycopg

from collector.masterdata import MasterData
from collector.oee import (
    OeeComponents,
    OeeInputs,
    OeeResult,
    ShiftCalendar,
    boundaries_from_spans,
    day_boundaries,
    hour_boundaries,
    planned_time,
    result_from_components,
    sum_components,
)
from collector.oee.components import ZERO
from collector.oee.engine import compute_components_buckets
from collector.oee_facts import read_oee_inputs
from collector.queries.errors import QueryError
from collector.queries.oee_hours import HOUR, scope_sums, stored_days
from collector.queries.scope import EquipmentRef, Scope, equipment_in_scope

_TICK = timedelta(microseconds=1)

#: Longest window one request may ask for (the performance target covers 31 days).
MAX_WINDOW_DAYS = 92


class Bucket(StrEnum):
    """How a window is cut: not at all, by local hour, by shift, by local day."""

    NONE = "none"
    HOUR = "hour"
    SHIFT = "shift"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class OeeRequest:
    """What is asked: ``scope`` ``ident`` over ``[start, end)`` cut into ``bucket``.

    ``tz`` sets the wall clock of hour and day buckets; default: the scope's calendar
    timezone (UTC without a calendar).
    """

    scope: Scope
    ident: str
    start: datetime
    end: datetime
    bucket: Bucket = Bucket.NONE
    tz: str | None = None


@dataclass(frozen=True, slots=True)
class BucketReport:
    """One bucket of the scope: its window, its shift (shift buckets) and its result."""

    start: datetime
    end: datetime
    shift: str | None
    result: OeeResult


@dataclass(frozen=True, slots=True)
class OeeReport:
    """The answer: the scope's buckets, its total, and each equipment's total."""

    request: OeeRequest
    as_of: datetime
    end: datetime
    """The window's end as computed: ``min(request.end, as_of)``."""
    timezone: str
    equipment: tuple[EquipmentRef, ...]
    buckets: tuple[BucketReport, ...]
    total: OeeResult
    by_equipment: tuple[tuple[EquipmentRef, OeeResult], ...]


def check_window(start: datetime, end: datetime, as_of: datetime) -> datetime:
    """The window's effective end; QueryError for a window that cannot be answered."""
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise QueryError(name, "needs a UTC offset, e.g. 2026-11-27T06:00:00+01:00")
    if end <= start:
        raise QueryError("end", f"{end.isoformat()} is not after start {start.isoformat()}")
    if (end - start).days > MAX_WINDOW_DAYS:
        raise QueryError("end", f"windows are limited to {MAX_WINDOW_DAYS} days")
    if start >= as_of:
        raise QueryError("start", f"{start.isoformat()} is in the future (now {as_of.isoformat()})")
    return min(end, as_of)


def scope_calendar(
    masterdata: MasterData, equipment: Sequence[EquipmentRef]
) -> tuple[ShiftCalendar | None, str]:
    """The calendar whose shifts cut a scope into shift buckets, and its timezone.

    One line (or one equipment): its line's calendar. Several lines: their common
    calendar, else the site's own (``calendar_for(site, "")``).
    """
    lines = {(e.path.site, e.path.line) for e in equipment}
    calendars = {masterdata.calendar_for(site, line) for site, line in lines}
    if len(calendars) == 1:
        calendar = next(iter(calendars))
        site, line = next(iter(lines))
        return calendar, masterdata.timezone_for(site, line)
    sites = {site for site, _ in lines}
    if len(sites) == 1:
        site = next(iter(sites))
        return masterdata.calendar_for(site, ""), masterdata.timezone_for(site, "")
    return None, "UTC"


def bucket_boundaries(
    bucket: Bucket,
    start: datetime,
    end: datetime,
    tz: str,
    calendar: ShiftCalendar | None,
) -> tuple[list[datetime], list[str | None]]:
    """Boundaries of the buckets and, for shift buckets, the shift of each bucket."""
    if bucket is Bucket.NONE:
        return [start.astimezone(UTC), end.astimezone(UTC)], [None]
    if bucket is Bucket.HOUR:
        bounds = hour_boundaries(start, end, tz)
    elif bucket is Bucket.DAY:
        bounds = day_boundaries(start, end, tz)
    else:
        if calendar is None:
            raise QueryError(
                "bucket", "shift buckets need a shift calendar for this scope (see masterdata)"
            )
        shifts = calendar.shift_instances(start, end)
        bounds = boundaries_from_spans(((s.start, s.end) for s in shifts), start, end)
        names = []
        for lo in bounds[:-1]:
            inside = [s.name for s in shifts if s.start <= lo < s.end]
            names.append(inside[0] if inside else None)
        return bounds, names
    return bounds, [None] * (len(bounds) - 1)


def equipment_inputs(
    conn: psycopg.Connection,
    masterdata: MasterData,
    ref: EquipmentRef,
    boundaries: Sequence[datetime],
) -> OeeInputs:
    """Facts of one equipment with its calendar's planned time and its cycle times, for
    the buckets ``boundaries`` (counts come summed per piece: see read_oee_inputs)."""
    start, end = boundaries[0], boundaries[-1]
    facts = read_oee_inputs(
        conn, ref.id, start, end, boundaries=boundaries, settings=masterdata.settings
    )
    calendar = masterdata.calendar_for(ref.path.site, ref.path.line)
    planned = planned_time(calendar, start, end)
    cycle = masterdata.ideal_cycle_times(ref.path)
    runs = facts.runs
    if cycle.overrides:
        # per-equipment master data beats the cycle time the run was started with
        runs = [
            replace(r, ideal_cycle_time_s=cycle.overrides[r.product_id])
            if r.product_id in cycle.overrides
            else r
            for r in runs
        ]
    defaults = {**cycle.defaults, **cycle.overrides}
    return replace(
        facts,
        runs=runs,
        planned=None if calendar is None else planned.planned,
        breaks=planned.breaks,
        ideal_cycle_time_by_product_s=defaults,
    )


@dataclass
class ScopeComponents:
    """Components of a scope's window: per bucket (all equipment) and per equipment."""

    by_bucket: list[OeeComponents]
    by_equipment: list[OeeComponents]


def scope_components(
    conn: psycopg.Connection,
    masterdata: MasterData,
    refs: Sequence[EquipmentRef],
    bounds: Sequence[datetime],
) -> ScopeComponents:
    """The stored hours of valid past days (summed by PostgreSQL per bucket and per
    equipment, collector.queries.oee_hours) plus whatever they leave (partial hours at
    the edges, today, days not computed yet), computed from the facts. The engine's
    components add up, so this equals computing every equipment's window at once."""
    w0, w1 = bounds[0], bounds[-1]
    days = stored_days(
        conn, [r.id for r in refs], masterdata.fingerprint, w0.date(), (w1 - _TICK).date()
    )
    valid = days.valid
    stored_buckets, stored_equipment = scope_sums(conn, days, bounds)
    by_bucket = [stored_buckets.get(i, ZERO) for i in range(len(bounds) - 1)]
    by_equipment = []
    for ref in refs:
        total = stored_equipment.get(ref.id, ZERO)
        covered = _covered_hours(valid.get(ref.id, set()), bounds)
        for lo, hi in _gaps(covered, w0, w1):
            sub = [lo, *(b for b in bounds if lo < b < hi), hi]
            inputs = equipment_inputs(conn, masterdata, ref, sub)
            pieces = compute_components_buckets(inputs, sub, masterdata.settings)
            for start, comps in zip(sub, pieces, strict=False):
                index = bisect_right(bounds, start) - 1
                by_bucket[index] = by_bucket[index] + comps
            total = sum_components([total, *pieces])
        by_equipment.append(total)
    return ScopeComponents(by_bucket, by_equipment)


def _covered_hours(days: set, bounds: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """The hours of ``days`` the SQL sums (collector.queries.oee_hours): inside the
    window and no bucket boundary inside; as sorted, merged spans."""
    w0, w1 = bounds[0], bounds[-1]
    spans: list[tuple[datetime, datetime]] = []
    for day in sorted(days):
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        lo, hi = max(w0, midnight), min(w1, midnight + 24 * HOUR)
        first = midnight + HOUR * -(-(lo - midnight) // HOUR)  # whole hours inside
        last = midnight + HOUR * ((hi - midnight) // HOUR)
        inside = bounds[bisect_right(bounds, first) : bisect_right(bounds, last)]
        cut = {_floor_hour(b) for b in inside if b != _floor_hour(b)}
        h = first
        while h < last:
            if h not in cut:
                if spans and spans[-1][1] == h:
                    spans[-1] = (spans[-1][0], h + HOUR)
                else:
                    spans.append((h, h + HOUR))
            h += HOUR
    return spans


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _gaps(
    covered: list[tuple[datetime, datetime]], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` minus the sorted, disjoint ``covered`` spans."""
    gaps, cursor = [], start
    for lo, hi in covered:
        if lo > cursor:
            gaps.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def oee_report(
    conn: psycopg.Connection,
    masterdata: MasterData,
    request: OeeRequest,
    as_of: datetime | None = None,
) -> OeeReport:
    """Compute ``request`` from the facts in ``conn`` (QueryError for bad parameters)."""
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    end = check_window(request.start, request.end, as_of)
    equipment = equipment_in_scope(conn, request.scope, request.ident)
    calendar, tz = scope_calendar(masterdata, equipment)
    tz = request.tz or tz
    bounds, shift_names = bucket_boundaries(request.bucket, request.start, end, tz, calendar)
    # components first, ratios last: each bucket, each equipment and the total are one
    # sum of components and one result_from_components (never averaged percentages)
    parts = scope_components(conn, masterdata, equipment, bounds)
    buckets = tuple(
        BucketReport(
            bounds[i],
            bounds[i + 1],
            shift_names[i],
            result_from_components(parts.by_bucket[i], pareto=False),
        )
        for i in range(len(bounds) - 1)
    )
    by_equipment = tuple(
        (ref, result_from_components(total))
        for ref, total in zip(equipment, parts.by_equipment, strict=True)
    )
    total = result_from_components(sum_components(parts.by_equipment))
    return OeeReport(
        request=request,
        as_of=as_of,
        end=end,
        timezone=tz,
        equipment=tuple(equipment),
        buckets=buckets,
        total=total,
        by_equipment=by_equipment,
    )
