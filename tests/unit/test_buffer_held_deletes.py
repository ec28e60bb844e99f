"""The buffer's held deletes (pure): runs of rowids, when they go, the sizes they free."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.buffer import _deletes, _sizes
from edge_agent.buffer._deletes import (
    DELETE_DELAY_S,
    DELETE_GROUP_ROWS,
    HeldDeletes,
    contiguous_runs,
)
from edge_agent.buffer._sizes import RowSizes


@pytest.mark.parametrize(
    ("rowids", "min_run", "runs", "singles"),
    [
        ([], 3, [], []),
        ([7], 1, [(7, 7)], []),
        ([7], 2, [], [7]),
        (list(range(10, 20)), 3, [(10, 19)], []),
        ([5, 3, 4, 1], 3, [(3, 5)], [1]),  # any order
        ([1, 1, 2, 3, 3], 3, [(1, 3)], []),  # duplicates count once
        ([1, 1, 3], 2, [], [1, 3]),  # duplicates never fill a gap
        ([1, 2, 4, 5, 6, 9], 3, [(4, 6)], [1, 2, 9]),
        ([1, 101, 201, 2, 102, 202], 2, [(1, 2), (101, 102), (201, 202)], []),  # per-equipment
    ],
)
def test_contiguous_runs(
    rowids: list[int], min_run: int, runs: list[tuple[int, int]], singles: list[int]
) -> None:
    assert contiguous_runs(rowids, min_run) == (runs, singles)


@given(st.lists(st.integers(1, 300), max_size=200), st.integers(1, 12))
def test_runs_and_singles_cover_exactly_the_given_rowids(rowids: list[int], min_run: int) -> None:
    runs, singles = contiguous_runs(rowids, min_run)
    covered = [rowid for first, last in runs for rowid in range(first, last + 1)] + singles
    assert sorted(covered) == sorted(set(rowids))  # nothing more, nothing twice
    assert all(last - first + 1 >= min_run for first, last in runs)
    assert singles == sorted(set(singles))
    assert [first for first, _ in runs] == sorted(first for first, _ in runs)


def test_held_rowids_wait_for_the_delay_then_go_in_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_deletes, "DELETE_CHUNK_ROWS", 4)
    held = HeldDeletes()
    held.hold([5, 6, 7], now=100.0)
    held.hold([1, 2, 3, 4], now=100.2)  # the oldest arrival sets the due time
    assert len(held) == 7
    assert not held.is_due(100.0 + DELETE_DELAY_S - 0.01)
    assert held.take(100.1, everything=False) == []
    assert held.due_at() == 100.0 + DELETE_DELAY_S
    now = 100.0 + DELETE_DELAY_S
    assert held.is_due(now)
    assert held.take(now, everything=False) == [1, 2, 3, 4]  # sorted, one chunk
    held.hold([9], now)  # arrives while a plan is under way: waits for the next plan
    assert held.due_at() == 0.0  # the rest of the plan is due at once
    assert held.take(now, everything=False) == [5, 6, 7]
    assert len(held) == 1
    assert not held.is_due(now)
    assert held.take(now + DELETE_DELAY_S, everything=False) == [9]
    assert len(held) == 0
    assert held.due_at() is None


def test_many_held_rowids_are_due_before_the_delay() -> None:
    held = HeldDeletes()
    held.hold(range(DELETE_GROUP_ROWS - 1), now=0.0)
    assert not held.is_due(0.0)
    held.hold([DELETE_GROUP_ROWS], now=0.0)
    assert held.is_due(0.0)


def test_everything_takes_the_plan_and_the_new_arrivals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_deletes, "DELETE_CHUNK_ROWS", 2)
    held = HeldDeletes()
    held.hold([3, 1, 2], now=0.0)
    assert held.take(DELETE_DELAY_S, everything=False) == [1, 2]
    held.hold([8], now=DELETE_DELAY_S)
    assert sorted(held.take(DELETE_DELAY_S, everything=True)) == [3, 8]
    assert len(held) == 0


def test_restore_undoes_a_failed_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_deletes, "DELETE_CHUNK_ROWS", 2)
    held = HeldDeletes()
    held.hold([4, 3], now=0.0)
    for everything in (False, True):
        savepoint = held.savepoint()
        held.hold([10, 11], now=1.0)
        assert held.take(1.0, everything=everything)
        held.restore(savepoint)
        assert len(held) == 2
        assert held.due_at() == DELETE_DELAY_S  # the original arrival time
    assert held.take(DELETE_DELAY_S, everything=False) == [3, 4]


def test_row_sizes_count_each_present_row_once() -> None:
    sizes = RowSizes(base=101)
    sizes.added(101, [10, 11, 12, 13])
    sizes.added(107, [20, 21])  # 105 and 106 were never committed (a gap)
    runs, singles = contiguous_runs([101, 102, 103, 105, 106, 107, 200], 3)
    assert sizes.measure(runs, singles) == (4, 10 + 11 + 12 + 20)  # 200: not stored
    sizes.forget(runs, singles)
    assert sizes.measure(runs, singles) == (0, 0)  # a second delete frees nothing
    assert sizes.measure([(101, 108)], []) == (2, 13 + 21)
    sizes.forget_through(104)  # a bound dropped the oldest rows
    assert sizes.base == 105
    assert sizes.measure([(101, 108)], []) == (1, 21)
    sizes.forget_through(None)
    sizes.forget_through(108)
    assert (len(sizes), sizes.base) == (0, 109)
    sizes.added(110, [7])
    assert sizes.measure([], [109, 110]) == (1, 7)


def test_row_sizes_let_go_of_the_deleted_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sizes, "_TRIM_STEP", 4)
    sizes = RowSizes(base=1)
    sizes.added(1, range(1, 21))
    sizes.forget([(1, 9)], [])
    assert (sizes.base, len(sizes)) == (9, 12)  # whole steps of 4 only
    sizes.forget([], [9, 10, 11, 12, 14])
    assert (sizes.base, len(sizes)) == (13, 8)
    assert sizes.measure([(1, 20)], []) == (7, sum(range(13, 21)) - 14)


def test_row_sizes_track_a_bounded_span(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sizes, "MAX_TRACKED_ROWS", 5)
    sizes = RowSizes(base=1)
    sizes.added(1, [1, 2, 3])
    sizes.added(4, [4, 5, 6, 7])
    assert (sizes.base, len(sizes)) == (3, 5)  # rows 1 and 2 are left to SQLite
    assert sizes.measure([(1, 7)], []) == (5, 3 + 4 + 5 + 6 + 7)
