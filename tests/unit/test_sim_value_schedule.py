"""ValueSchedule: the next process-value change instant and the machines it changes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.model.value_schedule import ValueSchedule


@pytest.mark.parametrize(
    ("offsets", "epoch_s", "expected_at", "expected_due"),
    [
        ({"a": 0.0}, 100.0, 101.0, ["a"]),  # at a change instant: the next one
        ({"a": 0.0}, 100.4, 101.0, ["a"]),
        ({"a": 0.0, "b": 0.5}, 100.4, 100.5, ["b"]),
        ({"a": 0.0, "b": 0.5}, 100.5, 101.0, ["a"]),
        ({"a": 0.25, "b": 0.25, "c": 0.75}, 100.3, 100.75, ["c"]),
        ({"a": 0.25, "b": 0.25, "c": 0.75}, 100.8, 101.25, ["a", "b"]),
        ({"a": 1.25}, 100.0, 100.25, ["a"]),  # offsets count modulo a second
    ],
)
def test_next_change(
    offsets: dict[str, float], epoch_s: float, expected_at: float, expected_due: list[str]
) -> None:
    at, due = ValueSchedule(offsets).next_change(epoch_s)
    assert at == pytest.approx(expected_at)
    assert sorted(due) == expected_due


def test_no_machines() -> None:
    schedule = ValueSchedule({})
    assert not schedule
    assert schedule.next_change(5.0) == (math.inf, [])


@given(
    offsets=st.dictionaries(
        st.sampled_from("abcdefgh"), st.integers(0, 999).map(lambda ms: ms / 1000), min_size=1
    ),
    epoch_s=st.floats(0, 2e9, allow_nan=False),
)
def test_the_next_change_is_the_first_after_now_and_names_its_machines(
    offsets: dict[str, float], epoch_s: float
) -> None:
    at, due = ValueSchedule(offsets).next_change(epoch_s)
    assert epoch_s < at <= epoch_s + 1.0 + 1e-6
    assert due
    for machine, offset_s in offsets.items():
        # every machine's own next change is not earlier; the due ones change exactly then
        mine = math.floor(epoch_s - offset_s) + 1 + offset_s
        if mine <= epoch_s:
            mine += 1
        assert mine >= at - 1e-9
        assert (machine in due) == (mine == at)
