"""Durations, timeline shorthand, counters, tag layout: pure helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.model.counters import Counters, CounterWidth, counter_delta
from simulators.model.states import (
    CANONICAL_CODES,
    PACKML_NAMES,
    MachineState,
    StateEncoding,
    decode_canonical,
    encode_state,
)
from simulators.scenario.durations import parse_duration_s
from simulators.scenario.loader import builtin_scenarios, load_scenario
from simulators.scenario.models import expand_machines
from simulators.scenario.timeline import TimelineEntry, parse_shorthand
from simulators.tags import Table, machine_tags


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("7m", 420.0),
        ("7min", 420.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("1d", 86400.0),
        ("2.5s", 2.5),
        ("15 min", 900.0),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "7x", "m5", "-1", "1h-5m", True])
def test_bad_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration_s(text)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "06:00 run A order 4711",
            {"at": "06:00", "action": "run", "product": "A", "order": "4711"},
        ),
        ("06:00 run", {"at": "06:00", "action": "run"}),
        (
            "08:10 unplanned_stop reason 17 for 7m",
            {
                "at": "08:10",
                "action": "state",
                "state": "unplanned_stop",
                "reason": "17",
                "for": "7m",
            },
        ),
        ("10:00 break 15m", {"at": "10:00", "action": "break", "for": "15m"}),
        (
            "10:30 changeover to B order 2 for 20m",
            {"at": "10:30", "action": "changeover", "product": "B", "order": "2", "for": "20m"},
        ),
        ("+2h end", {"at": "+2h", "action": "end"}),
        ("07:00 reset_counters", {"at": "07:00", "action": "reset_counters"}),
    ],
)
def test_timeline_shorthand(line: str, expected: dict[str, str]) -> None:
    assert parse_shorthand(line) == expected
    TimelineEntry.model_validate(line)  # and the result validates


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("06:00", "needs a time and an action"),
        ("06:00 explode", "unknown action 'explode'"),
        ("10:00 break", "a break needs a duration"),
        ("25:00 run", "not a valid clock time"),
        ("6 o'clock run", "clock time HH:MM"),
        ("06:00 run for 5m", "'run' lasts until the next entry"),
        ("06:00 idle reason", "expected 'reason N'"),
    ],
)
def test_bad_timeline_entries(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimelineEntry.model_validate(line)


@given(
    width=st.sampled_from(list(CounterWidth)),
    start=st.integers(0, 2**32 - 1),
    parts=st.lists(st.booleans(), max_size=300),
)
def test_counters_wrap_and_delta_recovers_parts(
    width: CounterWidth, start: int, parts: list[bool]
) -> None:
    start %= width.modulus
    counters = Counters(start, start, 0)
    for good in parts:
        counters = counters.add_part(good, width)
    assert 0 <= counters.total < width.modulus
    assert counter_delta(start, counters.total, width) == len(parts)
    assert counter_delta(start, counters.good, width) == sum(parts)
    assert counters.scrap == len(parts) - sum(parts)


def test_state_codes() -> None:
    assert sorted(CANONICAL_CODES.values()) == list(range(1, 8))
    for state in MachineState:
        assert decode_canonical(encode_state(state, StateEncoding.CANONICAL)) is state
        assert encode_state(state, StateEncoding.PACKML) in PACKML_NAMES
    with pytest.raises(ValueError, match="not a canonical state code"):
        decode_canonical(0)


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_register_map_never_overlaps(name: str) -> None:
    scenario = load_scenario(name)
    for machine in expand_machines(scenario):
        used: dict[tuple[Table, int], str] = {}
        for tag in machine_tags(machine):
            if tag.modbus is None:
                continue
            for address in range(tag.modbus.address, tag.modbus.address + tag.modbus.count):
                key = (tag.modbus.table, address)
                assert key not in used, f"{machine.name}: {tag.name} overlaps {used.get(key)}"
                used[key] = tag.name
        node_ids = [t.opcua_id for t in machine_tags(machine) if t.opcua_id]
        assert len(node_ids) == len(set(node_ids))


def test_load_scenario_has_ten_thousand_changing_tags() -> None:
    machines = expand_machines(load_scenario("load-100-machines"))
    changing = [t for m in machines for t in machine_tags(m) if t.signal.startswith(("ai.", "pv."))]
    assert len(machines) == 100
    assert len(changing) >= 10_000
    assert [m.modbus.unit_id for m in machines] == list(range(1, 101))
