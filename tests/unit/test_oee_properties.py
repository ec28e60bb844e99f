"""Property tests of OEE invariants over random facts (hypothesis)."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from typing import get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.oee import (
    CountRecord,
    OeeInputs,
    OeeResult,
    ProductionRun,
    StateInterval,
    TimeSpan,
    compute_oee,
    compute_oee_buckets,
    rollup,
    sum_components,
)
from lineside_protocol.states import EquipmentState

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
WINDOW_S = 4 * 3600
STATES = list(get_args(EquipmentState))  # every state the wire contract knows


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


@st.composite
def equipment(draw: st.DrawFn) -> OeeInputs:
    # State changes from before the window to after it, durations of 1 s to 40 min.
    t = draw(st.integers(-600, 600))
    states = []
    while t < WINDOW_S + 600:
        length = draw(st.sampled_from([2400, 900, 300, 120, 119, 30, 1]))
        states.append(
            StateInterval(
                at(t),
                at(t + length),
                draw(st.sampled_from(STATES)),
                draw(st.none() | st.integers(0, 3)),
            )
        )
        t += length + draw(st.sampled_from([0, 0, 0, 60]))  # some gaps (no data)
    if states and draw(st.booleans()):
        last = states[-1]
        states[-1] = StateInterval(last.start, None, last.state, last.reason_code)
    cuts = sorted(set(draw(st.lists(st.integers(0, WINDOW_S), max_size=4))))
    edges = [-3600, *cuts, WINDOW_S + 3600]
    runs = [
        ProductionRun(at(a), at(b), "p", draw(st.none() | st.sampled_from([0.5, 1.0, 2.5, 7.0])))
        for a, b in pairwise(edges)
    ]
    counts = [
        CountRecord(at(ts), good, scrap)
        for ts, good, scrap in draw(
            st.lists(
                st.tuples(st.integers(-60, WINDOW_S + 60), st.integers(0, 500), st.integers(0, 50)),
                max_size=25,
            )
        )
    ]
    planned = None
    breaks: list[TimeSpan] = []
    if draw(st.booleans()):
        points = sorted(set(draw(st.lists(st.integers(-600, WINDOW_S + 600), max_size=6))))
        planned = [TimeSpan(at(a), at(b)) for a, b in zip(points[::2], points[1::2], strict=False)]
        for span in planned:
            start = int((span.start - T0).total_seconds())
            breaks.append(TimeSpan(at(start + 600), at(start + 1500)))
    return OeeInputs(states=states, counts=counts, runs=runs, planned=planned, breaks=breaks)


bucket_cuts = st.lists(st.integers(1, WINDOW_S - 1), max_size=6).map(
    lambda xs: [at(0), *(at(x) for x in sorted(set(xs))), at(WINDOW_S)]
)


def check_invariants(result: OeeResult) -> None:
    c = result.components
    assert c.planned_busy_time_us == c.actual_production_time_us + c.downtime_us
    assert 0 <= c.planned_busy_time_us <= c.all_time_us
    for ratio in (result.availability, result.quality, result.utilisation):
        assert ratio.value is None or 0 <= ratio.value <= 1
        assert (ratio.value is None) == (ratio.reason is not None)
    p = result.performance.value
    assert p is None or p >= 0
    assert (p is not None and p > 1) == ("performance_above_100" in result.flag_codes())
    parts = (result.availability.value, result.performance.value, result.quality.value)
    if None not in parts:
        assert result.oee.value == parts[0] * parts[1] * parts[2]
    else:
        assert result.oee.value is None or result.availability.value == 0
    losses = result.six_losses
    total = sum(Fraction(getattr(losses, n)) for n in type(losses).__slots__)
    assert total == Fraction(c.planned_busy_time_us, 10**6) - c.good_ideal_time_s


@settings(max_examples=150, deadline=None)
@given(equipment(), bucket_cuts)
def test_buckets_preserve_times_and_counts(inputs: OeeInputs, bounds: list[datetime]) -> None:
    whole = compute_oee(inputs, bounds[0], bounds[-1])
    buckets = compute_oee_buckets(inputs, bounds)
    check_invariants(whole)
    for b in buckets:
        check_invariants(b.result)
    summed = sum_components([b.result.components for b in buckets])
    for f in fields(summed):
        assert getattr(summed, f.name) == getattr(whole.components, f.name), f.name
    assert rollup(b.result for b in buckets) == whole


@settings(max_examples=100, deadline=None)
@given(st.lists(equipment(), min_size=1, max_size=4))
def test_rollup_is_the_sum_of_components(machines: list[OeeInputs]) -> None:
    results = [compute_oee(m, at(0), at(WINDOW_S)) for m in machines]
    line = rollup(results)
    check_invariants(line)
    c = line.components
    for name in (
        "planned_busy_time_us",
        "actual_production_time_us",
        "downtime_us",
        "all_time_us",
        "good",
        "scrap",
        "parts_without_ideal_cycle_time",
    ):
        assert getattr(c, name) == sum(getattr(r.components, name) for r in results), name
    assert c.ideal_time_s == sum(r.components.ideal_time_s for r in results)
    if c.planned_busy_time_us:
        assert line.availability.value == Fraction(
            c.actual_production_time_us, c.planned_busy_time_us
        )
    if c.total:
        assert line.quality.value == Fraction(c.good, c.total)
    # Rolling up a rollup changes nothing (associativity).
    assert rollup([rollup(results[:1]), rollup(results[1:])]).components == c
