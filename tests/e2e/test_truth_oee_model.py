"""The end-to-end test's independent OEE model, checked by hand on a small truth log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from _truth_oee import machine_components, read_machines, shortest_stop_s

T0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def truth_log() -> list[dict]:
    """Simulated at speed 60 from 06:00; wall_start 12:00:00.0004 (sub-millisecond)."""
    wall_start = datetime(2026, 11, 29, 12, 0, 0, 400, tzinfo=UTC)
    return [
        {
            "ts": T0,
            "type": "run_started",
            "start": T0.isoformat(),
            "speed": 60,
            "wall_start": wall_start.isoformat(),
            "machines": [{"name": "m"}],
        },
        {"ts": at(60), "type": "order", "machine": "m", "ideal_cycle_time_s": 3.0},
        {"ts": at(60), "type": "state", "machine": "m", "to": "running"},
        {"ts": at(120), "type": "part", "machine": "m", "good": True},
        {"ts": at(180), "type": "part", "machine": "m", "good": False},
        {"ts": at(600), "type": "state", "machine": "m", "to": "unplanned_stop"},
        {"ts": at(900), "type": "state", "machine": "m", "to": "running"},
        {"ts": at(960), "type": "part", "machine": "m", "good": True},
        {"ts": at(1200), "type": "state", "machine": "m", "to": "planned_stop"},
        {"ts": at(1500), "type": "state", "machine": "m", "to": "changeover"},
        {"ts": at(1560), "type": "part", "machine": "m", "good": True},  # after the window
    ]


def test_wall_times_keep_milliseconds_like_the_wire() -> None:
    mapping, machines = read_machines(truth_log())
    first = machines["m"].transitions[0].at
    assert mapping.wall(at(60)) == datetime(2026, 11, 29, 12, 0, 1, 400, tzinfo=UTC)
    assert first == datetime(2026, 11, 29, 12, 0, 1, tzinfo=UTC)  # truncated to the ms


def test_components_by_hand() -> None:
    mapping, machines = read_machines(truth_log())
    machine = machines["m"]
    window = (mapping.on_wire(at(0)), mapping.on_wire(at(1500)))  # 25 wall seconds
    got = machine_components(machine, window, speed=60)
    # wall seconds: idle 0-1, running 1-10 and 15-20, stop 10-15, planned stop 20-25
    assert got.planned_us == 25_000_000
    assert got.planned_stop_us == 5_000_000
    assert got.running_us == 14_000_000
    assert got.downtime_us == 6_000_000  # idle 1 s + unplanned stop 5 s
    assert got.setup_us == 0
    assert (got.good, got.scrap) == (2, 1)
    assert got.ideal_s == 3 * Fraction(3.0 / 60)
    ratios = got.ratios()
    assert ratios["availability"] == pytest.approx(14 / 20)
    assert ratios["performance"] == pytest.approx(0.15 / 14)
    assert ratios["quality"] == pytest.approx(2 / 3)
    assert ratios["oee"] == pytest.approx(14 / 20 * 0.15 / 14 * 2 / 3)
    line = got + got
    assert line.ratios() == pytest.approx(ratios)
    assert line.planned_us == 50_000_000


def test_an_unknown_state_is_refused() -> None:
    log = truth_log()
    log[2] = {**log[2], "to": "maintenance"}
    mapping, machines = read_machines(log)
    with pytest.raises(AssertionError, match="maintenance"):
        machine_components(machines["m"], (mapping.wall(at(0)), mapping.wall(at(600))), 60)


def test_shortest_stop() -> None:
    _, machines = read_machines(truth_log())
    assert shortest_stop_s(machines["m"]) == pytest.approx(5.0)  # 300 sim s / 60
