"""The engine: state intervals, counts and runs -> OEE components per bucket.

Two passes. First the states of the whole window become a gap-free timeline of
classified segments; micro-stops are decided here, on whole stop episodes, so that
cutting the window into buckets never turns a long stop into short ones. Then each
bucket adds up the segment pieces and counts that fall into it.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from fractions import Fraction
from itertools import pairwise
from types import MappingProxyType

from collector.oee import _intervals as iv
from collector.oee.components import OeeComponents, ParetoKey
from collector.oee.errors import OeeInputError
from collector.oee.inputs import (
    DEFAULT_SETTINGS,
    NO_DATA,
    OFFLINE,
    CountRecord,
    OeeInputs,
    OeeSettings,
    ProductionRun,
    StateClass,
    StateInterval,
)
from collector.oee.result import OeeResult, result_from_components

_OPEN = math.inf


@dataclass(frozen=True, slots=True)
class BucketResult:
    """The result of one bucket ``[start, end)``."""

    start: datetime
    end: datetime
    result: OeeResult


@dataclass(frozen=True, slots=True)
class _Segment:
    start: int
    end: int
    state: str
    reason_code: int | None
    klass: StateClass
    micro: bool
    known: bool


def compute_oee(
    inputs: OeeInputs, start: datetime, end: datetime, settings: OeeSettings = DEFAULT_SETTINGS
) -> OeeResult:
    """OEE of one piece of equipment over the window ``[start, end)``."""
    return compute_oee_buckets(inputs, [start, end], settings)[0].result


def compute_oee_buckets(
    inputs: OeeInputs, boundaries: Sequence[datetime], settings: OeeSettings = DEFAULT_SETTINGS
) -> list[BucketResult]:
    """One result per bucket ``[boundaries[i], boundaries[i+1])``.

    Intervals are clipped to each bucket; a count belongs to the bucket ``(b_i, b_i+1]``
    holding its time (its parts were made before that instant).
    """
    comps = compute_components_buckets(inputs, boundaries, settings)
    utc = [iv.from_us(iv.to_us(b)) for b in boundaries]
    return [
        BucketResult(utc[i], utc[i + 1], result_from_components(c)) for i, c in enumerate(comps)
    ]


def compute_components_buckets(
    inputs: OeeInputs, boundaries: Sequence[datetime], settings: OeeSettings = DEFAULT_SETTINGS
) -> list[OeeComponents]:
    """The components of each bucket (what ``compute_oee_buckets`` turns into results):
    for callers that add buckets or equipment up before computing ratios."""
    bounds = [iv.to_us(b, "bucket boundary") for b in boundaries]
    if len(bounds) < 2 or any(a >= b for a, b in pairwise(bounds)):
        raise OeeInputError("bucket boundaries need at least two strictly increasing times")
    w_start, w_end = bounds[0], bounds[-1]
    planned = (
        [(w_start, w_end)]
        if inputs.planned is None
        else iv.clip(((iv.to_us(p.start), iv.to_us(p.end)) for p in inputs.planned), w_start, w_end)
    )
    breaks = iv.intersect(
        iv.normalize((iv.to_us(b.start), iv.to_us(b.end)) for b in inputs.breaks), planned
    )
    segments = _timeline(inputs.states, w_start, w_end, settings)
    window = _Window(
        segments,
        [s.start for s in segments],
        planned,
        [s for s, _ in planned],
        breaks,
        [s for s, _ in breaks],
    )
    counts = _count_parts(inputs, bounds, settings)
    return [
        _with_counts(_bucket_components(bounds[i], bounds[i + 1], window, settings), counts[i])
        for i in range(len(bounds) - 1)
    ]


# ---- states ---------------------------------------------------------------------------


def _timeline(
    states: Sequence[StateInterval], w_start: int, w_end: int, settings: OeeSettings
) -> list[_Segment]:
    """Gap-free classified segments covering ``[w_start, w_end)``."""
    # A stable sort by start: ties keep the caller's order (the store orders them by seq).
    rows = sorted(((iv.to_us(s.start, "state start"), s) for s in states), key=lambda r: r[0])
    spans: list[tuple[int, float, StateInterval]] = []
    for i, (start, s) in enumerate(rows):
        end: float = _OPEN if s.end is None else iv.to_us(s.end, "state end")
        # The fact table ends an interval at the next change; enforce it for overlaps.
        if i + 1 < len(rows):
            end = min(end, rows[i + 1][0])
        if end > start:
            spans.append((start, end, s))
    micro = _micro_stops(spans, settings)
    segments: list[_Segment] = []
    cursor = w_start
    no_data_class = settings.class_of(NO_DATA) or StateClass.AVAILABILITY_LOSS
    for idx, (start, end, s) in enumerate(spans):
        lo, hi = max(start, w_start), min(end, w_end)
        if lo >= hi:
            continue
        if lo > cursor:
            segments.append(_Segment(cursor, lo, NO_DATA, None, no_data_class, False, True))
        klass = settings.class_of(s.state)
        segments.append(
            _Segment(
                int(lo),
                int(hi),
                s.state,
                s.reason_code,
                klass or StateClass.AVAILABILITY_LOSS,
                idx in micro,
                klass is not None,
            )
        )
        cursor = int(hi)
    if cursor < w_end:
        segments.append(_Segment(cursor, w_end, NO_DATA, None, no_data_class, False, True))
    return segments


def _micro_stops(spans: list[tuple[int, float, StateInterval]], settings: OeeSettings) -> set[int]:
    """Indexes of intervals in stop episodes shorter than the micro-stop threshold.

    An episode is a run of back-to-back intervals in micro-stop states (for example
    ``unplanned_stop`` then ``starved``); an open episode is never a micro-stop yet.
    """
    threshold_us = settings.micro_stop_threshold_s * 1_000_000
    eligible = {
        s
        for s in settings.micro_stop_states
        if settings.class_of(s) is StateClass.AVAILABILITY_LOSS
    }
    found: set[int] = set()
    episode: list[int] = []

    def close() -> None:
        if episode:
            first, last = spans[episode[0]], spans[episode[-1]]
            if last[1] != _OPEN and last[1] - first[0] < threshold_us:
                found.update(episode)
            episode.clear()

    for i, (start, _end, s) in enumerate(spans):
        if s.state in eligible and (not episode or spans[episode[-1]][1] == start):
            episode.append(i)
            continue
        close()
        if s.state in eligible:
            episode.append(i)
    close()
    return found


@dataclass(frozen=True, slots=True)
class _Window:
    """The whole window's segments, planned time and breaks, with their start lists
    (built once, bisected by every bucket)."""

    segments: list[_Segment]
    seg_starts: list[int]
    planned: list[iv.Span]
    p_starts: list[int]
    breaks: list[iv.Span]
    br_starts: list[int]


def _bucket_components(
    b_start: int, b_end: int, w: _Window, settings: OeeSettings
) -> OeeComponents:
    segments, seg_starts = w.segments, w.seg_starts
    planned, p_starts, breaks, br_starts = w.planned, w.p_starts, w.breaks, w.br_starts
    t = defaultdict(int)
    by_state: dict[str, int] = defaultdict(int)
    stops: dict[ParetoKey, int] = defaultdict(int)
    unknown: set[str] = set()
    i = max(bisect_right(seg_starts, b_start) - 1, 0)
    while i < len(segments) and segments[i].start < b_end:
        seg = segments[i]
        i += 1
        lo, hi = max(seg.start, b_start), min(seg.end, b_end)
        if lo >= hi:
            continue
        length = hi - lo
        in_planned = iv.overlap(lo, hi, planned, p_starts)
        in_break = iv.overlap(lo, hi, breaks, br_starts)  # breaks lie inside planned time
        busy = in_planned - in_break
        if not seg.known:
            unknown.add(seg.state)
        if seg.state == OFFLINE:
            t["offline"] += busy
        elif seg.state == NO_DATA:
            t["no_data"] += busy
        if seg.klass is StateClass.PRODUCTION:
            # Running is production time wherever it happens; outside the plan it
            # extends planned busy time (flagged) so that its parts are not orphans.
            t["running"] += length
            t["unscheduled"] += length - in_planned
            continue
        if seg.klass is StateClass.PLANNED:
            t["pd_states"] += busy
            t["pd_breaks"] += in_break
            continue
        t["pd_breaks"] += in_break
        if busy == 0:
            continue
        if seg.micro:
            t["micro"] += busy
            stops[(seg.state, seg.reason_code)] += busy
        elif seg.klass is StateClass.PERFORMANCE_LOSS:
            t["perf"] += busy
        else:
            t["down"] += busy
            by_state[seg.state] += busy
            stops[(seg.state, seg.reason_code)] += busy
            if seg.state in settings.setup_states:
                t["setup"] += busy
    planned_time = iv.overlap(b_start, b_end, planned, p_starts)
    pbt = planned_time - t["pd_breaks"] - t["pd_states"] + t["unscheduled"]
    apt = t["running"] + t["micro"] + t["perf"]
    assert pbt == apt + t["down"], "time model does not add up"
    return OeeComponents(
        all_time_us=b_end - b_start,
        planned_time_us=planned_time,
        planned_downtime_breaks_us=t["pd_breaks"],
        planned_downtime_states_us=t["pd_states"],
        unscheduled_running_us=t["unscheduled"],
        planned_busy_time_us=pbt,
        actual_production_time_us=apt,
        running_us=t["running"],
        micro_stop_us=t["micro"],
        performance_state_us=t["perf"],
        downtime_us=t["down"],
        downtime_by_state_us=MappingProxyType(dict(by_state)),
        setup_us=t["setup"],
        offline_us=t["offline"],
        no_data_us=t["no_data"],
        stops_by_reason_us=MappingProxyType(dict(stops)),
        unknown_states=frozenset(unknown),
    )


# ---- counts ---------------------------------------------------------------------------


@dataclass
class _Tally:
    """Part counts of one bucket, grouped by ideal cycle time before any Fraction math."""

    by_cycle: dict[float, list[int]]  # ict -> [good, scrap, startup scrap]
    good: int = 0
    scrap: int = 0
    startup_scrap: int = 0
    without_ict: int = 0


def _valid_ict(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return value


def _count_parts(inputs: OeeInputs, bounds: list[int], settings: OeeSettings) -> list[_Tally]:
    runs: list[tuple[int, float, ProductionRun]] = sorted(
        (
            (iv.to_us(r.start, "run start"), _OPEN if r.end is None else iv.to_us(r.end), r)
            for r in inputs.runs
        ),
        key=lambda x: x[0],
    )
    run_starts = [r[0] for r in runs]
    startup_us = settings.startup_period_s * 1_000_000
    tallies = [_Tally({}) for _ in range(len(bounds) - 1)]
    for rec in inputs.counts:
        _check_count(rec)
        t = iv.to_us(rec.time, "count time")
        b = bisect_left(bounds, t)  # the bucket (bounds[b-1], bounds[b]]
        if b == 0 or b == len(bounds):
            continue
        tally = tallies[b - 1]
        # The run covering the count: start < t <= end, the latest start on overlap.
        r = bisect_left(run_starts, t) - 1
        run = runs[r] if r >= 0 and t <= runs[r][1] else None
        ict = _valid_ict(run[2].ideal_cycle_time_s) if run else None
        if ict is None:
            product = rec.product_id or (run[2].product_id if run else None)
            if product is not None:
                ict = _valid_ict(inputs.ideal_cycle_time_by_product_s.get(product))
        startup = rec.scrap if run is not None and t <= run[0] + startup_us else 0
        tally.good += rec.good
        tally.scrap += rec.scrap
        tally.startup_scrap += startup
        if ict is None:
            tally.without_ict += rec.total
            continue
        acc = tally.by_cycle.setdefault(ict, [0, 0, 0])
        acc[0] += rec.good
        acc[1] += rec.scrap
        acc[2] += startup
    return tallies


def _check_count(rec: CountRecord) -> None:
    for name in ("good", "scrap"):
        value = getattr(rec, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise OeeInputError(
                f"count at {rec.time.isoformat()}: {name} must be an integer >= 0, got {value!r}"
            )


def _with_counts(c: OeeComponents, tally: _Tally) -> OeeComponents:
    good_ideal = scrap_ideal = startup_ideal = Fraction(0)
    for ict, (good, scrap, startup) in tally.by_cycle.items():
        exact = Fraction(ict)
        good_ideal += good * exact
        scrap_ideal += scrap * exact
        startup_ideal += startup * exact
    return replace(
        c,
        good_ideal_time_s=good_ideal,
        scrap_ideal_time_s=scrap_ideal,
        startup_scrap_ideal_time_s=startup_ideal,
        good=tally.good,
        scrap=tally.scrap,
        startup_scrap=tally.startup_scrap,
        parts_without_ideal_cycle_time=tally.without_ict,
    )
