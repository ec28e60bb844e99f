"""The runtime serves each machine's process values at its own offset in the second."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from simulators.model.clock import AcceleratedClock, ManualClock
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


async def _served_lags(tick_s: float, speed: float, changes: int) -> dict[str, list[float]]:
    """Run ``Simulation.run`` on the wall clock until each machine served ``changes``
    process-value changes (5 s at most); per machine, the wall seconds from each change
    to the moment it was handed to the faces."""
    clock = AcceleratedClock(START, speed=speed)
    sim = Simulation(SCENARIO, clock, START, speed=speed)
    lags: dict[str, list[float]] = {"early": [], "late": []}
    enough = asyncio.Event()

    def on_updates(updates: list) -> None:
        if sim.tick_count == 0:  # the first step serves every value
            return
        served = datetime.now(UTC)
        for update in updates:
            if update.tag.name.endswith("temperature"):
                change = clock.to_wall(update.value.changed_at)
                lags[update.tag.machine].append((served - change).total_seconds())
        if min(len(seen) for seen in lags.values()) >= changes:
            enough.set()

    sim.subscribe(on_updates)
    stop = asyncio.Event()
    task = asyncio.create_task(sim.run(tick_s, stop))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(enough.wait(), 5.0)
    stop.set()
    await asyncio.wait_for(task, 5)
    return lags


async def test_process_values_are_served_at_their_change_not_at_the_next_tick() -> None:
    # values change every 0.5 wall s; a 0.5 s tick alone would serve them up to 0.5 s late
    lags = await _served_lags(tick_s=0.5, speed=2.0, changes=4)
    for machine, seen in lags.items():
        assert len(seen) >= 4, (machine, seen)
        assert min(seen) >= -0.002, (machine, seen)  # never before the change
        assert max(seen) < 0.06, (machine, seen)  # one scan (10 ms) + margin + a busy loop


async def test_values_faster_than_the_tick_are_served_on_the_tick_only() -> None:
    # at speed 20 a machine's values change every 50 ms: the 0.1 s tick samples them, as
    # before; stepping at every change would double what the faces serve
    clock = AcceleratedClock(START, speed=20.0)
    sim = Simulation(SCENARIO, clock, START, speed=20.0)
    ticked = asyncio.Event()
    sim.subscribe(lambda _updates: sim.tick_count >= 5 and ticked.set())
    stop = asyncio.Event()
    task = asyncio.create_task(sim.run(0.1, stop))
    await asyncio.wait_for(ticked.wait(), 5.0)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert sim.value_step_count == 0
