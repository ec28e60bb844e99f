"""Summing counts per piece between cut points changes no result (collector.oee.count_pieces).

The store sums counts in SQL per piece and product (collector.oee_facts); here the same
summing is done in Python over random facts, and every bucket's result must be equal to
the one computed from the raw counts.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.oee import CountRecord, OeeInputs, OeeSettings, ProductionRun, compute_oee_buckets
from collector.oee.count_pieces import count_cut_points
from tests.unit.test_oee_properties import at, bucket_cuts, equipment


def summed(inputs: OeeInputs, cuts: list) -> list[CountRecord]:
    """What _COUNT_SUMS returns: per (piece, product) the sums at the latest time."""
    groups: dict[tuple[int, str | None], list] = {}
    for c in inputs.counts:
        if not cuts[0] < c.time <= cuts[-1]:
            continue  # the SQL reads (start, end] only
        key = (bisect_left(cuts, c.time), c.product_id)  # number of cuts < t
        acc = groups.setdefault(key, [c.time, 0, 0])
        acc[0] = max(acc[0], c.time)
        acc[1] += c.good
        acc[2] += c.scrap
    return [CountRecord(t, g, s, key[1]) for key, (t, g, s) in groups.items()]


@settings(max_examples=300, deadline=None)
@given(
    equipment(),
    bucket_cuts,
    st.sampled_from([0.0, 45.0, 600.0]),
    st.lists(st.sampled_from(["a", "b", None]), min_size=30, max_size=30),
    st.lists(st.sampled_from([0, 0, 1, 300, 1800]), min_size=8, max_size=8),
)
def test_summed_counts_give_the_same_results(
    inputs: OeeInputs, bounds: list, startup_s: float, products: list, cut_short_s: list
) -> None:
    # runs that end before the next one starts: counts between them belong to no run
    runs = [
        replace(r, end=r.end - timedelta(seconds=cut_short_s[i % 8]))
        if r.end is not None and r.end - timedelta(seconds=cut_short_s[i % 8]) > r.start
        else r
        for i, r in enumerate(inputs.runs)
    ]
    inputs = replace(inputs, runs=runs)
    # counts of several products, some exactly on bucket boundaries and run edges
    counts = [replace(c, product_id=products[i % 30]) for i, c in enumerate(inputs.counts)]
    counts += [CountRecord(b, 3, 1, "a") for b in bounds]
    counts += [CountRecord(r.start, 2, 0, "b") for r in inputs.runs]
    counts += [CountRecord(r.end, 4, 0, "a") for r in inputs.runs if r.end is not None]
    counts += [
        CountRecord(r.end + timedelta(seconds=1), 5, 0, "b")
        for r in inputs.runs
        if r.end is not None
    ]
    counts += [CountRecord(r.start + timedelta(seconds=startup_s), 1, 1, None) for r in inputs.runs]
    inputs = replace(
        inputs,
        counts=counts,
        ideal_cycle_time_by_product_s={"a": 1.5, "b": 3.0},
    )
    settings_ = OeeSettings(startup_period_s=startup_s)
    cuts = count_cut_points(inputs.runs, bounds, settings_)
    raw = compute_oee_buckets(inputs, bounds, settings_)
    fast = compute_oee_buckets(replace(inputs, counts=summed(inputs, cuts)), bounds, settings_)
    assert [b.result.to_dict() for b in fast] == [b.result.to_dict() for b in raw]
    assert [b.result.components for b in fast] == [b.result.components for b in raw]


def test_cut_points_hold_boundaries_run_edges_and_startup_ends_inside_the_window() -> None:
    runs = [
        ProductionRun(at(-100), at(400), "a", 1.0),
        ProductionRun(at(500), None, "b", None),
        ProductionRun(at(9_000), at(9_500), "c", 2.0),
    ]
    cuts = count_cut_points(runs, [at(0), at(3600), at(7200)], OeeSettings(startup_period_s=60))
    assert cuts == [at(0), at(400), at(500), at(560), at(3600), at(7200)]
