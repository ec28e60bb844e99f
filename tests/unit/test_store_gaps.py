"""Sequence gap logic (collector.store.gaps): tables of cases and a model-based property."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.store.gaps import (
    ARRIVED,
    DROPPED_BY_AGENT,
    GapInsert,
    GapPlan,
    GapUpdate,
    OpenGap,
    SeqRange,
    intersect,
    is_plain_continuation,
    merge_ranges,
    plan_gaps,
    subtract,
)

R = SeqRange
SEEN = datetime(2026, 1, 5, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ranges", "merged"),
    [
        ([], []),
        ([R(5, 7), R(1, 2)], [R(1, 2), R(5, 7)]),
        ([R(1, 2), R(3, 4)], [R(1, 4)]),  # adjacent runs are one run
        ([R(1, 5), R(2, 3)], [R(1, 5)]),
        ([R(4, 4), R(4, 4)], [R(4, 4)]),  # a seq twice (two events, same seq)
        ([R(3, 1)], []),  # empty range
    ],
)
def test_merge_ranges(ranges: list[SeqRange], merged: list[SeqRange]) -> None:
    assert merge_ranges(ranges) == merged


@pytest.mark.parametrize(
    ("span", "holes", "pieces"),
    [
        (R(5, 9), [], [R(5, 9)]),
        (R(5, 9), [R(7, 7)], [R(5, 6), R(8, 9)]),
        (R(5, 9), [R(1, 5)], [R(6, 9)]),
        (R(5, 9), [R(9, 20)], [R(5, 8)]),
        (R(5, 9), [R(0, 100)], []),
        (R(5, 9), [R(1, 2), R(6, 6), R(8, 8), R(30, 31)], [R(5, 5), R(7, 7), R(9, 9)]),
    ],
)
def test_subtract(span: SeqRange, holes: list[SeqRange], pieces: list[SeqRange]) -> None:
    assert subtract(span, holes) == pieces


def test_intersect() -> None:
    assert intersect(R(5, 9), [R(1, 5), R(7, 8), R(9, 12)]) == [R(5, 5), R(7, 8), R(9, 9)]
    assert intersect(R(5, 9), [R(10, 12)]) == []


@pytest.mark.parametrize(
    ("max_seq", "arrived", "plain"),
    [
        (None, [R(100, 120)], True),  # first contact: whatever comes first is the baseline
        (99, [R(100, 120)], True),
        (99, [R(101, 120)], False),  # skips 100
        (99, [R(90, 95)], False),  # late
        (99, [R(100, 101), R(103, 104)], False),
    ],
)
def test_plain_continuation(max_seq: int | None, arrived: list[SeqRange], plain: bool) -> None:
    assert is_plain_continuation(max_seq, arrived) is plain


CASES = {
    "live continuation changes nothing but the max": (
        9,
        [],
        [R(10, 19)],
        [],
        GapPlan(19),
    ),
    "first contact sets the baseline, no gap below it": (
        None,
        [],
        [R(100, 104)],
        [],
        GapPlan(104),
    ),
    "first contact with a hole inside the write opens it": (
        None,
        [],
        [R(100, 104), R(110, 112)],
        [],
        GapPlan(112, inserts=(GapInsert(105, 109, None, None),), opened=1),
    ),
    "skipping ahead opens a gap": (
        4,
        [],
        [R(10, 14)],
        [],
        GapPlan(14, inserts=(GapInsert(5, 9, None, None),), opened=1),
    ),
    "two skips in one write open two gaps": (
        4,
        [],
        [R(6, 6), R(9, 9)],
        [],
        GapPlan(9, inserts=(GapInsert(5, 5, None, None), GapInsert(7, 8, None, None)), opened=2),
    ),
    "a late event at the start of a gap shrinks it": (
        14,
        [OpenGap(1, 5, 9, SEEN)],
        [R(5, 5)],
        [],
        GapPlan(14, updates=(GapUpdate(1, 6, 9, None),)),
    ),
    "a late event inside a gap splits it, both parts keep detected_at": (
        14,
        [OpenGap(1, 5, 9, SEEN)],
        [R(7, 7)],
        [],
        GapPlan(14, updates=(GapUpdate(1, 5, 6, None),), inserts=(GapInsert(8, 9, None, SEEN),)),
    ),
    "the whole gap arriving closes it as arrived": (
        14,
        [OpenGap(1, 5, 9, SEEN)],
        [R(5, 9)],
        [],
        GapPlan(14, updates=(GapUpdate(1, 5, 9, ARRIVED),), closed=1),
    ),
    "late events and new ones in the same write": (
        14,
        [OpenGap(1, 5, 9, SEEN)],
        [R(5, 9), R(15, 20)],
        [],
        GapPlan(20, updates=(GapUpdate(1, 5, 9, ARRIVED),), closed=1),
    ),
    "an untouched gap is left alone": (
        14,
        [OpenGap(1, 5, 9, SEEN)],
        [R(15, 15)],
        [],
        GapPlan(15),
    ),
    "an overflow explaining a whole gap closes it as dropped_by_agent": (
        14,
        [OpenGap(1, 5, 9, SEEN)],
        [R(15, 15)],
        [R(5, 9)],
        GapPlan(15, updates=(GapUpdate(1, 5, 9, DROPPED_BY_AGENT),), closed=1),
    ),
    "an overflow range wider than the gap (some were delivered) closes it": (
        14,
        [OpenGap(1, 5, 9, SEEN)],
        [R(15, 15)],
        [R(0, 12)],
        GapPlan(15, updates=(GapUpdate(1, 5, 9, DROPPED_BY_AGENT),), closed=1),
    ),
    "an overflow explaining part of a gap: explained part closed, rest stays open": (
        14,
        [OpenGap(1, 5, 9, SEEN)],
        [R(15, 15)],
        [R(5, 7)],
        GapPlan(
            15,
            updates=(GapUpdate(1, 8, 9, None),),
            inserts=(GapInsert(5, 7, DROPPED_BY_AGENT, SEEN),),
            closed=1,
        ),
    ),
    "overflow event arriving with the jump: the new gap is explained at once": (
        46,
        [],
        [R(1881, 1881)],
        [R(47, 1880)],
        GapPlan(1881, inserts=(GapInsert(47, 1880, DROPPED_BY_AGENT, None),), opened=1, closed=1),
    ),
    "overflow ahead of the backlog (live lane first): the rest of the gap stays open": (
        46,
        [],
        [R(1900, 1900)],
        [R(47, 1880)],
        GapPlan(
            1900,
            inserts=(
                GapInsert(1881, 1899, None, None),
                GapInsert(47, 1880, DROPPED_BY_AGENT, None),
            ),
            opened=1,
            closed=1,
        ),
    ),
    "late arrivals and an overflow closing the rest": (
        20,
        [OpenGap(3, 10, 19, SEEN)],
        [R(12, 13), R(21, 21)],
        [R(10, 11), R(14, 19)],
        GapPlan(
            21,
            updates=(GapUpdate(3, 10, 11, DROPPED_BY_AGENT),),
            inserts=(GapInsert(14, 19, DROPPED_BY_AGENT, SEEN),),
            closed=2,
        ),
    ),
    "an overflow below the baseline explains nothing": (
        None,
        [],
        [R(500, 510)],
        [R(10, 20)],
        GapPlan(510),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_plan_gaps(case: tuple) -> None:
    max_seq, open_gaps, arrived, dropped, expected = case
    assert plan_gaps(max_seq, open_gaps, arrived, dropped) == expected


# --- property: plans applied one write after another match a set model --------------------


@st.composite
def deliveries(draw: st.DrawFn) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """A stream of writes: seqs 0..n-1 (some never delivered, some delivered twice, in any
    order) and, now and then, an overflow event explaining a range below its own seq."""
    n = draw(st.integers(min_value=1, max_value=60))
    lost = draw(st.sets(st.integers(0, n - 1), max_size=n // 2))
    delivered = [seq for seq in range(n) if seq not in lost]
    delivered += draw(st.lists(st.sampled_from(delivered), max_size=5)) if delivered else []
    order = draw(st.permutations(delivered))
    writes = []
    i = 0
    while i < len(order):
        size = draw(st.integers(1, 8))
        chunk = list(order[i : i + size])
        i += size
        drops = []
        if draw(st.booleans()) and draw(st.booleans()):
            own_seq = max(chunk)
            first = draw(st.integers(0, own_seq))
            last = draw(st.integers(first, own_seq))
            if last < own_seq:
                drops.append((first, last))
        writes.append((chunk, drops))
    return writes


def _apply(rows: dict[int, list], plan: GapPlan, next_id: list[int]) -> None:
    for update in plan.updates:
        rows[update.gap_id] = [update.first, update.last, update.closed_by]
    for insert in plan.inserts:
        rows[next_id[0]] = [insert.first, insert.last, insert.closed_by]
        next_id[0] += 1


@settings(max_examples=300, deadline=None)
@given(deliveries())
def test_plans_match_a_set_model(writes: list[tuple[list[int], list[tuple[int, int]]]]) -> None:
    rows: dict[int, list] = {}  # gap id -> [first, last, closed_by]
    next_id = [1]
    max_seq: int | None = None
    baseline: int | None = None
    arrived_all: set[int] = set()
    explained: set[int] = set()
    for chunk, drops in writes:
        open_gaps = [OpenGap(i, f, last, SEEN) for i, (f, last, c) in rows.items() if c is None]
        plan = plan_gaps(max_seq, open_gaps, [R(s, s) for s in chunk], [R(*d) for d in drops])
        _apply(rows, plan, next_id)

        if baseline is None:
            baseline = min(chunk) - 1
        old_high = baseline if max_seq is None else max_seq
        arrived_all |= set(chunk)
        max_seq = max(arrived_all)
        missing_now = set(range(baseline + 1, max_seq + 1)) - arrived_all
        for first, last in drops:  # an overflow explains what is missing when it arrives
            explained |= missing_now & set(range(first, last + 1))
        assert plan.max_seq == max_seq

        open_rows = sorted((f, last) for f, last, c in rows.values() if c is None)
        open_seqs = [s for f, last in open_rows for s in range(f, last + 1)]
        assert sorted(open_seqs) == sorted(missing_now - explained)  # exactly what is missing
        assert len(open_seqs) == len(set(open_seqs))  # open gaps never overlap
        for f, last, closed_by in rows.values():
            span = set(range(f, last + 1))
            if closed_by == ARRIVED:
                assert span <= arrived_all
            if closed_by == DROPPED_BY_AGENT:
                assert span <= explained
        skipped = sorted(set(range(old_high + 1, max_seq + 1)) - arrived_all)
        runs = sum(1 for i, s in enumerate(skipped) if i == 0 or skipped[i - 1] != s - 1)
        assert plan.opened == runs  # each run of skipped seqs is one new gap
        assert plan.closed == sum(1 for u in plan.updates if u.closed_by is not None) + sum(
            1 for i in plan.inserts if i.closed_by is not None
        )
