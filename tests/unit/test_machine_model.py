"""The pure machine model: tables of cases and property tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.model.behaviour import behaviour_for
from simulators.model.machine import MachineModel
from simulators.model.states import MachineState
from simulators.model.truth import TruthRecord
from simulators.scenario.loader import load_scenario, parse_scenario
from simulators.scenario.models import Machine, Scenario, expand_machines

BERLIN = ZoneInfo("Europe/Berlin")


def scenario_yaml(timeline: str, extra: str = "", products: str = "") -> Scenario:
    products = (
        products or "[{id: A, ideal_cycle_time_s: 2, jitter: 0.1}, {id: B, ideal_cycle_time_s: 3}]"
    )
    text = f"""
scenario: t
timezone: Europe/Berlin
seed: 5
machines:
  - name: m1
    location: {{site: s, area: a, line: l}}
    products: {products}
{extra}
    timeline:
{timeline}
"""
    return parse_scenario(text, "t.yaml")


def build(
    scenario: Scenario, start: datetime, machine: int = 0, seed: int | None = None
) -> MachineModel:
    cfg: Machine = expand_machines(scenario)[machine]
    seed = scenario.seed if seed is None else seed
    zone = ZoneInfo(scenario.timezone)
    return MachineModel(cfg, behaviour_for(cfg, start, zone, seed), start, seed)


def play(model: MachineModel, until: datetime, step_s: float) -> list[TruthRecord]:
    records: list[TruthRecord] = []
    t = model.now
    while t < until:
        t = min(until, t + timedelta(seconds=step_s))
        records += model.advance_to(t)
    return records


SHIFT = scenario_yaml(
    """      - "06:00 run A order 1001"
      - "08:10 unplanned_stop reason 17 for 7m"
      - "10:00 break 15m"
      - "11:00 changeover to B order 1002 for 20m"
      - "13:00 starved reason 31"
      - "13:10 run"
      - "14:00 end"
"""
)
START = datetime(2026, 11, 30, 6, 0, tzinfo=BERLIN).astimezone(UTC)
END = START + timedelta(hours=8, minutes=30)


def states(records: list[TruthRecord]) -> list[tuple[str, str, int]]:
    local = [
        (r.ts.astimezone(BERLIN).strftime("%H:%M"), r.data["to"], r.data["reason"])
        for r in records
        if r.type == "state"
    ]
    return local


def test_scripted_timeline_produces_exact_state_sequence() -> None:
    records = play(build(SHIFT, START), END, 10)
    assert states(records) == [
        ("06:00", "running", 0),
        ("08:10", "unplanned_stop", 17),
        ("08:17", "running", 0),
        ("10:00", "planned_stop", 1),
        ("10:15", "running", 0),
        ("11:00", "changeover", 0),
        ("11:20", "running", 0),
        ("13:00", "starved", 31),
        ("13:10", "running", 0),
        ("14:00", "planned_stop", 0),
    ]
    assert [r.type for r in records if r.type in ("end",)] == ["end"]


def test_parts_are_only_produced_while_running() -> None:
    records = play(build(SHIFT, START), END, 60)
    running = False
    for record in records:
        if record.type == "state":
            running = record.data["to"] == "running"
        elif record.type == "part":
            assert running, f"part at {record.ts} while not running"


def test_part_counts_match_running_time_and_ideal_cycle() -> None:
    records = play(build(SHIFT, START), END, 60)
    parts_a = [r for r in records if r.type == "part" and r.data["product"] == "A"]
    # A runs 06:00-08:10, 08:17-10:00, 10:15-11:00 = 16,680 s at 2.0-2.2 s per part
    # (mean 2.1 s: about 7,943 parts).
    assert 16680 / 2.2 - 2 <= len(parts_a) <= 16680 / 2.0 + 1
    assert abs(len(parts_a) - 16680 / 2.1) < 100


def test_order_change_resets_counters_and_switches_product() -> None:
    records = play(build(SHIFT, START), END, 30)
    orders = [r for r in records if r.type == "order"]
    assert [(o.data["order"], o.data["product"], o.data["ideal_cycle_time_s"]) for o in orders] == [
        ("1001", "A", 2.0),
        ("1002", "B", 3.0),
    ]
    resets = [r for r in records if r.type == "counter_reset"]
    assert [r.data["cause"] for r in resets] == ["order_change", "order_change"]
    first_b = next(r for r in records if r.type == "part" and r.data["order"] == "1002")
    assert first_b.data["total"] == 1


def test_the_last_counter_values_before_a_reset_are_kept_for_the_faces() -> None:
    """A step that holds the last parts of an order and the reset of the next one (30
    simulated seconds here) must still let the faces show the counters before the reset."""
    model = build(SHIFT, START)
    last_parts: dict[str, int] = {}
    seen: list[dict[str, int]] = []
    t = model.now
    while t < END:
        t = min(END, t + timedelta(seconds=30))
        for record in model.advance_to(t):
            if record.type == "part":
                last_parts = {k: record.data[k] for k in ("total", "good_count", "scrap_count")}
            elif record.type == "counter_reset" and last_parts:
                seen.append(last_parts)
                last_parts = {}
        for before in model.take_counters_before_resets():
            shown = {"total": before["total"].value, "good_count": before["good"].value,
                     "scrap_count": before["scrap"].value}  # fmt: skip
            assert seen, "counters kept without a reset after parts"
            assert shown == seen.pop(0)
    assert seen == []
    assert model.take_counters_before_resets() == []  # taken once


def test_raw_counters_are_consistent_with_the_part_log() -> None:
    records = play(build(SHIFT, START), END, 30)
    total = good = scrap = 0
    for record in records:
        if record.type == "counter_reset":
            total = good = scrap = 0
        elif record.type == "part":
            total += 1
            good += record.data["good"]
            scrap += not record.data["good"]
            assert (
                record.data["total"],
                record.data["good_count"],
                record.data["scrap_count"],
            ) == (total % 2**32, good % 2**32, scrap % 2**32)


def test_cycle_in_progress_pauses_during_a_stop() -> None:
    scenario = scenario_yaml(
        '      - "06:00 run A"\n      - "06:00:01 unplanned_stop reason 1 for 1h"\n',
        products="[{id: A, ideal_cycle_time_s: 2, jitter: 0}]",
    )
    model = build(scenario, START)
    records = play(model, START + timedelta(hours=1, seconds=1, milliseconds=500), 1)
    assert not [r for r in records if r.type == "part"]
    records = model.advance_to(START + timedelta(hours=1, seconds=2))
    parts = [r for r in records if r.type == "part"]
    assert [p.ts for p in parts] == [START + timedelta(hours=1, seconds=2)]


@pytest.mark.parametrize(("width", "modulus"), [("uint16", 2**16), ("uint32", 2**32)])
def test_counters_wrap_at_their_width(width: str, modulus: int) -> None:
    scenario = scenario_yaml(
        '      - "06:00 run A"\n',
        extra=f"    counter_width: {width}\n    scrap_rate: 0",
        products="[{id: A, ideal_cycle_time_s: 0.01, jitter: 0}]",
    )
    model = build(scenario, START)
    model.advance_to(START)  # applies the run (and its order-change reset)
    model.counters = type(model.counters)(modulus - 2, modulus - 2, 0)
    records = model.advance_to(START + timedelta(milliseconds=30))
    assert [r.data["total"] for r in records if r.type == "part"] == [modulus - 1, 0, 1]


def test_reset_counters_command_is_logged_and_applied() -> None:
    model = build(SHIFT, START)
    model.advance_to(START + timedelta(minutes=5))
    assert model.counters.total > 0
    records = model.reset_counters(START + timedelta(minutes=5, seconds=1))
    assert records[-1].type == "counter_reset"
    assert records[-1].data == {"cause": "command"}
    assert model.counters.total == 0


def test_timeline_reset_counters_entry() -> None:
    scenario = scenario_yaml('      - "06:00 run A"\n      - "07:00 reset_counters"\n')
    records = play(build(scenario, START), START + timedelta(hours=1, minutes=1), 60)
    resets = [r for r in records if r.type == "counter_reset"]
    assert [(r.ts - START, r.data["cause"]) for r in resets] == [
        (timedelta(0), "order_change"),
        (timedelta(hours=1), "command"),
    ]


def test_end_of_day_rollover_and_offsets() -> None:
    scenario = scenario_yaml(
        '      - "22:00 run A"\n      - "02:00 break 30m"\n      - "+6h end"\n'
    )
    start = datetime(2026, 11, 30, 22, 0, tzinfo=BERLIN).astimezone(UTC)
    records = play(build(scenario, start), start + timedelta(hours=7), 300)
    assert [(r.ts - start, r.data["to"]) for r in records if r.type == "state"] == [
        (timedelta(0), "running"),
        (timedelta(hours=4), "planned_stop"),
        (timedelta(hours=4, minutes=30), "running"),
        (timedelta(hours=6), "planned_stop"),
    ]


def test_clock_times_follow_daylight_saving_changes() -> None:
    # 29 March 2026: Berlin jumps from 02:00 to 03:00, so 01:00 -> 04:00 is 2 real hours.
    scenario = scenario_yaml('      - "01:00 run A"\n      - "04:00 end"\n')
    start = datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN).astimezone(UTC)
    records = play(build(scenario, start), start + timedelta(hours=3), 600)
    ends = [r.ts for r in records if r.type == "end"]
    assert ends == [start + timedelta(hours=2)]


@settings(max_examples=15, deadline=None)
@given(step_s=st.floats(min_value=2.0, max_value=900.0), seed=st.integers(0, 10_000))
def test_results_do_not_depend_on_step_size(step_s: float, seed: int) -> None:
    reference = play(build(SHIFT, START, seed=seed), END, 60)
    other = play(build(SHIFT, START, seed=seed), END, step_s)
    assert [r.to_json() for r in other] == [r.to_json() for r in reference]


def test_seed_makes_runs_reproducible_and_different() -> None:
    a = play(build(SHIFT, START, seed=1), END, 60)
    b = play(build(SHIFT, START, seed=1), END, 60)
    c = play(build(SHIFT, START, seed=2), END, 60)
    assert [r.to_json() for r in a] == [r.to_json() for r in b]
    assert [r.to_json() for r in a] != [r.to_json() for r in c]


@settings(max_examples=20, deadline=None)
@given(scrap_rate=st.sampled_from([0.0, 0.05, 0.2, 1.0]))
def test_scrap_rate_is_respected(scrap_rate: float) -> None:
    scenario = scenario_yaml(
        '      - "06:00 run A"\n',
        extra=f"    scrap_rate: {scrap_rate}",
        products="[{id: A, ideal_cycle_time_s: 1, jitter: 0}]",
    )
    records = build(scenario, START).advance_to(START + timedelta(hours=2))
    parts = [r for r in records if r.type == "part"]
    scrap = sum(not p.data["good"] for p in parts)
    assert len(parts) == 7200
    assert abs(scrap / len(parts) - scrap_rate) < 0.02


def test_random_mode_is_reproducible_and_covers_configured_states() -> None:
    scenario = load_scenario("load-100-machines")
    start = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    a = play(build(scenario, start, machine=7), start + timedelta(hours=24), 300)
    b = play(build(scenario, start, machine=7), start + timedelta(hours=24), 7)
    assert [r.to_json() for r in a] == [r.to_json() for r in b]
    seen = {r.data["to"] for r in a if r.type == "state"}
    assert {"running", "unplanned_stop", "starved", "changeover"} <= seen
    orders = [r for r in a if r.type == "order"]
    assert len(orders) >= 5
    # Every stop returns to running: no state follows a stop except running.
    sequence = [r.data["to"] for r in a if r.type == "state"]
    for before, after in itertools.pairwise(sequence):
        if before != "running":
            assert after == "running", sequence


def test_random_machines_differ_from_each_other() -> None:
    scenario = load_scenario("load-100-machines")
    start = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    first = play(build(scenario, start, machine=0), start + timedelta(hours=8), 600)
    second = play(build(scenario, start, machine=1), start + timedelta(hours=8), 600)
    assert states(first) != states(second)


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("canonical", {"running": 1, "unplanned_stop": 6, "planned_stop": 5, "changeover": 7}),
        ("packml", {"running": 6, "unplanned_stop": 11, "planned_stop": 2, "changeover": 15}),
    ],
)
def test_state_encoding_in_signals_and_log(encoding: str, expected: dict[str, int]) -> None:
    scenario = scenario_yaml(
        '      - "06:00 run A"\n      - "07:00 unplanned_stop for 5m"\n'
        '      - "08:00 changeover to B for 5m"\n      - "09:00 end"\n',
        extra=f"    state_encoding: {encoding}",
    )
    model = build(scenario, START)
    records = play(model, START + timedelta(hours=4), 60)
    codes = {r.data["to"]: r.data["code"] for r in records if r.type == "state"}
    assert codes == expected
    assert model.signals()["state"].value == expected["planned_stop"]
    assert model.signals()["state_name"].value == MachineState.PLANNED_STOP.value


def test_signals_carry_change_times() -> None:
    model = build(SHIFT, START)
    model.advance_to(START + timedelta(hours=2, minutes=11))
    signals = model.signals()
    assert signals["state"].changed_at == START + timedelta(hours=2, minutes=10)
    assert signals["reason"].value == 17
    assert signals["order"].value == "1001"
    assert signals["order"].changed_at == START
    assert signals["total"].changed_at <= START + timedelta(hours=2, minutes=10)


def test_process_values_change_every_simulated_second() -> None:
    scenario = load_scenario("one-machine-shift")
    start = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    model = build(scenario, start)
    model.advance_to(start + timedelta(minutes=1))
    t = start + timedelta(minutes=1)
    values = []
    for i in range(5):
        values.append(model.signals(t + timedelta(seconds=i))["pv.temperature"].value)
    assert len(set(values)) == 5
    again = model.signals(t + timedelta(seconds=4, milliseconds=500))["pv.temperature"]
    assert again.value == values[4]
    assert again.changed_at == t + timedelta(seconds=4)
    assert 55 < values[0] < 65  # running: base 35 + offset 25 +- wave and noise


def test_bulk_wave_values_equal_single_channel_values() -> None:
    from simulators.model.process_values import channels_for, wave_constants, wave_values

    machine = expand_machines(load_scenario("load-100-machines"))[3]
    channels = channels_for(machine, seed=100)
    for second in (0, 1_764_460_800, 1_764_460_801):
        for running in (True, False):
            bulk = wave_values(wave_constants(channels), second, running)
            single = [c.value(second + 0.5, running, 0.0) for c in channels if c.source == "wave"]
            assert bulk == single
    assert len(set(wave_values(wave_constants(channels), 5, True))) == len(channels)


def test_process_values_change_value_offset_s_after_the_whole_second() -> None:
    scenario = load_scenario("one-machine-shift")
    shifted = scenario.model_copy(
        update={"machines": [scenario.machines[0].model_copy(update={"value_offset_s": 0.25})]}
    )
    start = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    plain, offset = build(scenario, start), build(shifted, start)
    t = start + timedelta(minutes=1)
    for model in (plain, offset):
        model.advance_to(t + timedelta(seconds=2))
    # the same values, each served 0.25 s later: at t+1.1 s the offset machine still
    # serves the value of second t, which changed at t+0.25 s
    before = offset.signals(t + timedelta(seconds=1, milliseconds=100))["pv.temperature"]
    assert before.changed_at == t + timedelta(milliseconds=250)
    assert before.value == plain.signals(t)["pv.temperature"].value
    after = offset.signals(t + timedelta(seconds=1, milliseconds=250))["pv.temperature"]
    assert after.changed_at == t + timedelta(seconds=1, milliseconds=250)
    assert after.value == plain.signals(t + timedelta(seconds=1))["pv.temperature"].value
    assert after.value != before.value


def test_replicas_can_spread_their_value_offsets_over_the_second() -> None:
    scenario = load_scenario("load-100-machines")
    cell = scenario.machines[0]
    assert cell.replicas is not None

    def with_replicas(**update: object) -> list[Machine]:
        replicas = cell.replicas.model_copy(update={"count": 4, **update})
        machine = cell.model_copy(update={"replicas": replicas})
        return expand_machines(scenario.model_copy(update={"machines": [machine]}))

    spread = with_replicas(spread_value_offsets=True)
    assert [m.value_offset_s for m in spread] == [0.0, 0.25, 0.5, 0.75]
    assert {m.value_offset_s for m in with_replicas()} == {0.0}


def test_a_start_or_stop_within_the_second_stamps_the_process_values_with_its_time() -> None:
    scenario = scenario_yaml(
        '      - "06:00 run A order 1"\n      - "06:10 unplanned_stop reason 17 for 5m"\n'
        '      - "06:30 end"',
        extra="    value_offset_s: 0.5\n"
        "    process_values: [{name: temperature, base: 30, running_offset: 20, noise: 0}]",
    )
    model = build(scenario, START)
    stop = START + timedelta(minutes=10)  # half-way through a value second (offset 0.5)
    model.advance_to(stop - timedelta(milliseconds=100))
    running = model.signals(stop - timedelta(milliseconds=100))["pv.temperature"]
    assert running.changed_at == stop - timedelta(milliseconds=500)
    model.advance_to(stop + timedelta(milliseconds=100))
    stopped = model.signals(stop + timedelta(milliseconds=100))["pv.temperature"]
    assert stopped.value < running.value - 15  # the running offset is gone at once
    assert stopped.changed_at == stop  # not the value second's start, before the stop
