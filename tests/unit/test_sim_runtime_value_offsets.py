"""The runtime serves each machine's process values at its own offset in the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from simulators.model.clock import ManualClock
from simulators.runtime import Simulation
from simulators.scenario.loader import parse_scenario

SCENARIO = parse_scenario(
    """
scenario: offsets
timezone: UTC
seed: 1
machines:
  - name: early
    location: {site: s, area: a, line: l}
    products: [{id: A, ideal_cycle_time_s: 60}]
    process_values: [{name: temperature, base: 30, noise: 1}]
    timeline: ["06:00 run A order 1", "07:00 end"]
  - name: late
    location: {site: s, area: a, line: l}
    value_offset_s: 0.5
    modbus: {unit_id: 2}
    products: [{id: A, ideal_cycle_time_s: 60}]
    process_values: [{name: temperature, base: 30, noise: 1}]
    timeline: ["06:00 run A order 1", "07:00 end"]
""",
    "offsets.yaml",
)
START = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def test_each_machine_changes_at_its_offset_with_that_change_time() -> None:
    clock = ManualClock(START)
    sim = Simulation(SCENARIO, clock, START)
    seen: list[tuple[float, str, datetime]] = []
    sim.subscribe(
        lambda updates: seen.extend(
            (clock.now().timestamp() - START.timestamp(), u.tag.machine, u.value.changed_at)
            for u in updates
            if u.tag.name.endswith("temperature")
        )
    )
    sim.step()
    seen.clear()  # the first step serves everything
    for _ in range(40):  # 4 s in 0.1 s steps
        clock.advance(0.1)
        sim.step()
    early = [(round(at, 1), changed) for at, machine, changed in seen if machine == "early"]
    late = [(round(at, 1), changed) for at, machine, changed in seen if machine == "late"]
    assert [at for at, _ in early] == [1.0, 2.0, 3.0, 4.0]
    assert [at for at, _ in late] == [0.5, 1.5, 2.5, 3.5]
    assert [changed for _, changed in late] == [
        START + timedelta(seconds=s + 0.5) for s in range(4)
    ]
    assert [changed for _, changed in early] == [START + timedelta(seconds=s) for s in (1, 2, 3, 4)]
