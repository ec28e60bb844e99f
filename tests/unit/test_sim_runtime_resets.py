"""The simulation runtime serves a counter's last value before a reset, even when the
last parts and the reset fall into one step (what an OPC UA subscription must see)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from simulators.model.clock import ManualClock
from simulators.runtime import Simulation
from simulators.scenario.loader import parse_scenario

SCENARIO = parse_scenario(
    """
scenario: resets
timezone: UTC
seed: 1
machines:
  - name: m1
    location: {site: s, area: a, line: l}
    products: [{id: A, ideal_cycle_time_s: 2}, {id: B, ideal_cycle_time_s: 3}]
    timeline:
      - "06:00 run A order 1"
      - "06:10 run B order 2"
      - "06:20 end"
""",
    "resets.yaml",
)
START = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def served_totals(step_s: float) -> list[int]:
    clock = ManualClock(START)
    sim = Simulation(SCENARIO, clock, START)
    totals: list[int] = []
    sim.subscribe(
        lambda updates: totals.extend(u.value.value for u in updates if u.tag.name == "TotalCount")
    )
    sim.step()
    for _ in range(int(1500 / step_s)):
        clock.advance(step_s)
        sim.step()
    return totals


def test_a_step_over_the_reset_serves_the_total_before_it_then_zero() -> None:
    totals = served_totals(step_s=7)  # 06:09:58 -> 06:10:05 holds a part and the reset
    reset_at = next(i for i, (a, b) in enumerate(itertools.pairwise(totals)) if b < a)
    assert totals[reset_at] >= 290  # 10 min of 2 s parts: every one of order 1 shown
    assert totals[reset_at + 1] in (0, 1, 2)
    # the total before the reset is the same whatever the step: nothing skipped
    fine = served_totals(step_s=1)
    fine_reset = next(i for i, (a, b) in enumerate(itertools.pairwise(fine)) if b < a)
    assert totals[reset_at] == fine[fine_reset]
