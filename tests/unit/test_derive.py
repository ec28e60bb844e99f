"""The edge agent's pure derivation: samples -> event drafts.

Regression cases are data: ``tests/cases/derive/<case>/`` holds

- ``roles.json``: ``{"equipment", "connections", "tags": {tag id: {"role": ..., options}}}``
  (options are the fields of the role dataclass; counters: ``"role": "good_count"``...),
- ``samples.jsonl``: one input per line, either a sample ``{"tag", "value", "received_ts",
  "source_ts"?, "quality"? (good), "status"? (Good)}``, a batch ``{"batch": [samples]}``,
  a connection change ``{"connection", "connected", "at"}`` or ``{"restart": true}``
  (snapshot, JSON round trip, a new Deriver restores it),
- ``expected.jsonl``: the drafts, ``{"type", "event_time", "received_time"? (defaults to
  event_time), "payload", "correlation_id"}`` (equipment is the roles' equipment).

Times are ``HH:MM:SS[.fff]`` on 2026-01-05 UTC or full ISO 8601. Lines starting with
``#`` are comments.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.derive import (
    CANONICAL_PRESET,
    PACKML_PRESET,
    CanonicalState,
    CounterRole,
    Deriver,
    EquipmentRoles,
    EventDraft,
    OrderRole,
    ProcessValueRole,
    ProductRole,
    ReasonRole,
    RolesError,
    SnapshotError,
    StateRole,
    counter_increment,
    resolve_state,
    state_table,
    validate_roles,
)
from edge_agent.derive.process_values import beyond_deadband
from edge_agent.samples import ConnectionChange, Quality, Sample
from simulators.model import states as sim_states

CASES_DIR = Path(__file__).parent.parent / "cases" / "derive"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())
DAY = "2026-01-05"
T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


# ---- the case format ----------------------------------------------------------------


def parse_time(text: str) -> datetime:
    if "T" not in text:
        text = f"{DAY}T{text}+00:00"
    return datetime.fromisoformat(text).astimezone(UTC)


def render_time(value: datetime) -> str:
    if value.date().isoformat() == DAY and value.utcoffset() == timedelta(0):
        ms = value.microsecond // 1000
        return value.strftime("%H:%M:%S") + (f".{ms:03d}" if value.microsecond else "")
    return value.isoformat()


def roles_from_json(data: dict[str, Any]) -> EquipmentRoles:
    kinds: dict[str, Any] = {
        "state": StateRole,
        "reason": ReasonRole,
        "order": OrderRole,
        "product": ProductRole,
        "process_value": ProcessValueRole,
    }
    tags = {}
    for tag, spec in data["tags"].items():
        options = {k: v for k, v in spec.items() if k != "role"}
        role = spec["role"]
        if role.endswith("_count"):
            tags[tag] = CounterRole(kind=role.removesuffix("_count"), **options)
        else:
            tags[tag] = kinds[role](**options)
    return EquipmentRoles(data["equipment"], tuple(data["connections"]), tags)


def sample_from_json(data: dict[str, Any]) -> Sample:
    return Sample(
        tag=data["tag"],
        value=data.get("value"),
        quality=Quality(data.get("quality", "good")),
        status=data.get("status", "Good"),
        source_ts=parse_time(data["source_ts"]) if "source_ts" in data else None,
        server_ts=None,
        received_ts=parse_time(data["received_ts"]),
    )


def render_draft(draft: EventDraft) -> str:
    """A draft as a normalised expected.jsonl line."""
    payload = {
        k: render_time(v) if isinstance(v, datetime) else v for k, v in draft.payload.items()
    }
    line: dict[str, Any] = {"type": str(draft.type), "event_time": render_time(draft.event_time)}
    if draft.received_time != draft.event_time:
        line["received_time"] = render_time(draft.received_time)
    line["payload"] = payload
    line["correlation_id"] = draft.correlation_id
    return json.dumps(line)


def expected_line(data: dict[str, Any], equipment: str) -> str:
    payload = dict(data["payload"])
    if payload.get("interval_start") is not None:
        payload["interval_start"] = parse_time(payload["interval_start"])
    event_time = parse_time(data["event_time"])
    received = parse_time(data["received_time"]) if "received_time" in data else event_time
    draft = EventDraft(
        data["type"], equipment, event_time, received, payload, data["correlation_id"]
    )
    return render_draft(draft)


def jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip() and not line.startswith("#")]


def run_inputs(roles: EquipmentRoles, inputs: list[dict[str, Any]]) -> list[EventDraft]:
    deriver = Deriver(roles)
    drafts: list[EventDraft] = []
    for item in inputs:
        if item.get("restart"):
            snapshot = json.loads(json.dumps(deriver.snapshot()))
            deriver = Deriver(roles)
            deriver.restore(snapshot)
        elif "connection" in item:
            change = ConnectionChange(item["connection"], item["connected"], parse_time(item["at"]))
            drafts += deriver.on_connection(change)
        elif "batch" in item:
            drafts += deriver.on_samples([sample_from_json(s) for s in item["batch"]])
        else:
            drafts += deriver.on_sample(sample_from_json(item))
    return drafts


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_derive_case(case: Path) -> None:
    roles = roles_from_json(json.loads((case / "roles.json").read_text()))
    drafts = run_inputs(roles, jsonl(case / "samples.jsonl"))
    assert all(d.equipment == roles.equipment for d in drafts)
    expected = [expected_line(e, roles.equipment) for e in jsonl(case / "expected.jsonl")]
    assert [render_draft(d) for d in drafts] == expected


# ---- state presets against the simulator's codes ------------------------------------


def test_canonical_preset_matches_the_simulator() -> None:
    table = state_table(StateRole(preset="canonical"))
    for state in sim_states.MachineState:
        code = sim_states.encode_state(state, sim_states.StateEncoding.CANONICAL)
        assert resolve_state(table, code) == state.value
        assert resolve_state(table, state.value) == state.value  # the StateName tag
    assert set(CANONICAL_PRESET) == set(sim_states.CANONICAL_CODES.values())


def test_packml_preset_matches_the_simulator() -> None:
    table = state_table(StateRole(preset="packml"))
    for state in sim_states.MachineState:
        code = sim_states.encode_state(state, sim_states.StateEncoding.PACKML)
        # starved and blocked share Suspended (documented): both read back as starved
        expected = "starved" if state is sim_states.MachineState.BLOCKED else state.value
        assert resolve_state(table, code) == expected, sim_states.PACKML_NAMES[code]
    # every PackML state but Undefined has a mapping, also by name
    assert set(PACKML_PRESET) == set(sim_states.PACKML_NAMES) - {0}
    for code, name in sim_states.PACKML_NAMES.items():
        assert resolve_state(table, name.upper()) == PACKML_PRESET.get(code)
    assert resolve_state(table, 0) is None


@pytest.mark.parametrize(
    ("role", "raw", "expected"),
    [
        (StateRole(preset="none", mapping={"RUN": "running"}), " run ", "running"),
        (StateRole(preset="none", mapping={"true": "running", "false": "idle"}), False, "idle"),
        (StateRole(preset="none", mapping={"6": "running"}), 6, "running"),
        (StateRole(preset="none", mapping={6: "running"}), "6", "running"),
        (StateRole(preset="canonical", mapping={"1": "changeover"}), 1, "changeover"),
        (StateRole(preset="canonical"), 1.0, "running"),
        (StateRole(preset="canonical"), True, None),  # a bool is not the code 1
        (StateRole(preset="none"), "running", None),
    ],
)
def test_state_mapping(role: StateRole, raw: Any, expected: str | None) -> None:
    assert resolve_state(state_table(role), raw) == expected


# ---- roles validation ---------------------------------------------------------------


def roles(**tags: Any) -> EquipmentRoles:
    return EquipmentRoles("press-1", ("plc-1",), tags)


@pytest.mark.parametrize(
    ("equipment", "problem"),
    [
        (
            roles(g=CounterRole("good")),
            "counters: read exactly two of good_count, scrap_count and total_count (the third "
            "is derived: total = good + scrap); configured: ['good']",
        ),
        (
            roles(g=CounterRole("good"), s=CounterRole("scrap"), t=CounterRole("total")),
            "counters: read exactly two of good_count",
        ),
        (
            roles(g=CounterRole("good", width_bits=24), s=CounterRole("scrap")),
            "tag 'g': width_bits 24 is not supported; use 16, 32 or 64",
        ),
        (
            roles(g=CounterRole("good", 16, max_increment=70000), s=CounterRole("scrap", 16)),
            "tag 'g': max_increment 70000 is out of range; use 1 to 65535",
        ),
        (
            roles(a=CounterRole("good"), b=CounterRole("good")),
            "only one tag may have role good_count",
        ),
        (roles(s=StateRole(preset="plc5")), "tag 's': unknown state preset 'plc5'"),
        (
            roles(s=StateRole(mapping={"RUN": "runing"})),
            "tag 's': mapping 'RUN' -> 'runing' is not a state; use one of running, idle,",
        ),
        (roles(r=ReasonRole()), "a reason tag needs a state tag"),
        (roles(a=StateRole(), b=StateRole()), "only one tag may have role state; found ['a', 'b']"),
        (
            roles(p=ProductRole({"A": 0})),
            "tag 'p': ideal_cycle_time_s of product 'A' is 0; use a number > 0",
        ),
        (
            roles(t=ProcessValueRole(deadband_abs=-1, max_interval_s=0)),
            "tag 't': deadband_abs is -1; use a number >= 0",
        ),
        (EquipmentRoles("press-1", (), {}), "no connections"),
    ],
)
def test_validate_roles_names_the_problem(equipment: EquipmentRoles, problem: str) -> None:
    with pytest.raises(RolesError) as caught:
        validate_roles(equipment)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
    assert str(caught.value).startswith("equipment 'press-1': invalid tag roles")


def test_every_roles_problem_is_reported_at_once() -> None:
    with pytest.raises(RolesError) as caught:
        Deriver(roles(g=CounterRole("good", width_bits=8), r=ReasonRole()))
    assert len(caught.value.problems) == 3


# ---- counters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "previous", "current", "order_changed", "expected"),
    [
        (16, 10, 15, False, (5, False)),
        (16, 65530, 4, False, (10, False)),  # wrap
        (16, 30000, 5, False, (5, True)),  # a wrap would be 35541 parts: a reset
        (16, 40000, 5, False, (25541, False)),  # ambiguous: looks like a plausible wrap
        (16, 40000, 5, True, (5, True)),  # the order changed: a reset
        (16, 5, 40000, False, (0, False)),  # implausible jump: re-baseline only
        (32, 100, 100, False, (0, False)),
        (32, 2**32 - 1, 0, False, (1, False)),
        (64, 7, 3, False, (3, True)),
    ],
)
def test_counter_increment(
    width: int, previous: int, current: int, order_changed: bool, expected: tuple[int, bool]
) -> None:
    role = CounterRole("good", width_bits=width)
    assert counter_increment(role, previous, current, order_changed) == expected


PAIRS = [("good", "scrap"), ("good", "total"), ("scrap", "total")]


@st.composite
def counter_runs(draw: st.DrawFn) -> tuple[int, tuple[str, str], list[dict[str, Any]]]:
    """True part streams and the wrapped counter readings a PLC would show.

    Resets are kept only where the readings can reveal them (the deriver cannot tell a
    reset the counter hides: a reading not below the previous one, or one that looks
    like a plausible wrap without an order change), and an order change without a reset
    only where no counter wraps (the order change makes a decrease read as a reset).
    """
    width = draw(st.sampled_from([16, 32]))
    pair = draw(st.sampled_from(PAIRS))
    modulus = 1 << width
    limit = modulus // 2  # the default max_increment
    start = st.one_of(st.integers(0, 3), st.integers(modulus - 30, modulus - 1))
    raw = {"good": draw(start), "scrap": draw(start), "total": draw(start)}
    parts = st.one_of(st.integers(0, 3), st.integers(0, 16000))
    steps = draw(
        st.lists(
            st.tuples(parts, parts, st.sampled_from(["", "", "", "reset", "order", "order+reset"])),
            max_size=30,
        )
    )
    readings = [{"raw": dict(raw), "good": 0, "scrap": 0, "order": False, "reset": False}]
    for good, scrap, event in steps:
        made = {"good": good, "scrap": scrap, "total": good + scrap}
        after_reset = {k: made[k] for k in pair}
        after_run = {k: (raw[k] + made[k]) % modulus for k in pair}
        hint = "order" in event
        if "reset" in event and not all(
            raw[k] == 0 or (c < raw[k] and (hint or raw[k] - c < modulus - limit))
            for k, c in after_reset.items()
        ):
            event = event.replace("reset", "").replace("+", "")
        if event == "order" and any(after_run[k] < raw[k] for k in pair):
            event = ""
        reset = "reset" in event
        for k in raw:
            raw[k] = made[k] if reset else (raw[k] + made[k]) % modulus
        readings.append(
            {
                "raw": dict(raw),
                "good": good,
                "scrap": scrap,
                "order": "order" in event,
                "reset": reset,
            }
        )
    return width, pair, readings


def counter_roles(width: int, pair: tuple[str, str]) -> EquipmentRoles:
    tags: dict[str, Any] = {k: CounterRole(k, width_bits=width) for k in pair}
    tags["order"] = OrderRole()
    return EquipmentRoles("m1", ("plc-1",), tags)


def good_sample(tag: str, value: Any, at: datetime) -> Sample:
    return Sample(tag, value, Quality.GOOD, "Good", None, None, at)


def feed_counters(
    deriver: Deriver, pair: tuple[str, str], reading: dict[str, Any], step: int, split: bool
) -> list[EventDraft]:
    at = T0 + timedelta(seconds=step)
    orders = [good_sample("order", f"order-{step}", at)] if reading["order"] else []
    # split: one sample per call, the read counter before the total (see counters.py)
    counters = [good_sample(k, reading["raw"][k], at) for k in pair]
    if not split:
        return deriver.on_samples(orders + counters)
    drafts = deriver.on_samples(orders)
    for sample in counters:
        drafts += deriver.on_sample(sample)
    return drafts


@settings(max_examples=200, deadline=None)
@given(run=counter_runs(), split=st.booleans())
def test_counted_parts_equal_the_parts_made(
    run: tuple[int, tuple[str, str], list[dict[str, Any]]], split: bool
) -> None:
    width, pair, readings = run
    deriver = Deriver(counter_roles(width, pair))
    for step, reading in enumerate(readings):
        drafts = feed_counters(deriver, pair, reading, step, split)
        counted = [d.payload for d in drafts if d.type == "production.counted"]
        assert all(p["total"] == p["good"] + p["scrap"] for p in counted)
        assert all(p["good"] >= 0 and p["scrap"] >= 0 and p["total"] > 0 for p in counted)
        assert sum(p["good"] for p in counted) == reading["good"], (step, reading)
        assert sum(p["scrap"] for p in counted) == reading["scrap"], (step, reading)
        if not reading["reset"]:
            assert not any(p["counter_reset"] for p in counted)


# ---- snapshot / restore -------------------------------------------------------------

MIXED_ROLES = EquipmentRoles(
    "m1",
    ("plc-1",),
    {
        "state": StateRole(preset="packml"),
        "reason": ReasonRole(),
        "order": OrderRole(),
        "product": ProductRole({"P": 2.0}),
        "good": CounterRole("good", width_bits=16),
        "total": CounterRole("total", width_bits=16),
        "temp": ProcessValueRole("degC", deadband_abs=0.5, max_interval_s=5),
    },
)

_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "state": st.integers(0, 17),
    "reason": st.integers(0, 3),
    "order": st.sampled_from(["", "A1", "A2"]),
    "product": st.sampled_from(["P", "Q"]),
    "good": st.integers(0, 65535),
    "total": st.integers(0, 65535),
    "temp": st.floats(-10, 10),
}


@st.composite
def mixed_batches(draw: st.DrawFn) -> list[list[Sample]]:
    at = T0
    batches = []
    for _ in range(draw(st.integers(1, 40))):
        batch = []
        for tag in draw(st.lists(st.sampled_from(sorted(_VALUES)), min_size=1, max_size=4)):
            at += timedelta(milliseconds=draw(st.sampled_from([0, 0, 100, 1500, 7000])))
            bad = draw(st.integers(0, 9)) == 0
            value = None if bad else draw(_VALUES[tag])
            quality = (
                Quality.BAD if bad else draw(st.sampled_from([Quality.GOOD, Quality.UNCERTAIN]))
            )
            batch.append(Sample(tag, value, quality, "x", at, None, at + timedelta(milliseconds=5)))
        batches.append(batch)
    return batches


@settings(max_examples=60, deadline=None)
@given(batches=mixed_batches(), data=st.data())
def test_restore_continues_like_an_uninterrupted_run(
    batches: list[list[Sample]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(batches)))
    straight = Deriver(MIXED_ROLES)
    expected = [d for b in batches for d in straight.on_samples(b)]
    first = Deriver(MIXED_ROLES)
    drafts = [d for b in batches[:cut] for d in first.on_samples(b)]
    second = Deriver(MIXED_ROLES)
    second.restore(json.loads(json.dumps(first.snapshot())))
    drafts += [d for b in batches[cut:] for d in second.on_samples(b)]
    assert [d._asdict() for d in drafts] == [d._asdict() for d in expected]
    assert json.loads(json.dumps(second.snapshot())) == json.loads(json.dumps(straight.snapshot()))


@settings(max_examples=60, deadline=None)
@given(batches=mixed_batches())
def test_drafts_are_well_formed(batches: list[list[Sample]]) -> None:
    deriver = Deriver(MIXED_ROLES)
    last_state_time = None
    for batch in batches:
        for draft in deriver.on_samples(batch):
            assert draft.event_time.tzinfo is not None
            if draft.type == "equipment.state_changed":
                assert draft.payload["state"] in {s.value for s in CanonicalState}
                assert last_state_time is None or draft.event_time >= last_state_time
                last_state_time = draft.event_time
                if draft.payload["state"] == "running":
                    assert draft.payload["reason_code"] is None
            if draft.type == "production.counted":
                p = draft.payload
                assert p["total"] == p["good"] + p["scrap"] > 0
                assert p["good"] >= 0
                assert p["scrap"] >= 0
            if draft.type == "tag.sampled":
                assert draft.payload["value"] is not None


@settings(max_examples=60, deadline=None)
@given(batches=mixed_batches(), data=st.data())
def test_restore_without_process_values_keeps_every_count_and_state(
    batches: list[list[Sample]], data: st.DataObject
) -> None:
    """The agent persists snapshots without process values: counts, states and orders
    stay exact (process values restart from fresh deadband baselines)."""
    cut = data.draw(st.integers(0, len(batches)))
    straight = Deriver(MIXED_ROLES)
    expected = [d for b in batches for d in straight.on_samples(b)]
    first = Deriver(MIXED_ROLES)
    drafts = [d for b in batches[:cut] for d in first.on_samples(b)]
    second = Deriver(MIXED_ROLES)
    second.restore(json.loads(json.dumps(first.snapshot(process_values=False))))
    drafts += [d for b in batches[cut:] for d in second.on_samples(b)]

    def core(items: list[EventDraft]) -> list[dict[str, Any]]:
        return [d._asdict() for d in items if d.type != "tag.sampled"]

    assert core(drafts) == core(expected)


def test_restore_refuses_another_equipment_or_version() -> None:
    snapshot = Deriver(MIXED_ROLES).snapshot()
    other = Deriver(EquipmentRoles("m2", ("plc-1",), dict(MIXED_ROLES.tags)))
    with pytest.raises(SnapshotError, match="belongs to equipment 'm1'"):
        other.restore(snapshot)
    with pytest.raises(SnapshotError, match="version 99 is not supported"):
        Deriver(MIXED_ROLES).restore({**snapshot, "version": 99})
    with pytest.raises(SnapshotError, match="damaged snapshot"):
        Deriver(MIXED_ROLES).restore({**snapshot, "counters": {}})


# ---- small rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "reported", "value", "expected"),
    [
        (ProcessValueRole(), 1.0, 1.0, False),
        (ProcessValueRole(), 1.0, 1.0001, True),
        (ProcessValueRole(deadband_abs=0.5), 10.0, 10.5, False),
        (ProcessValueRole(deadband_abs=0.5), 10.0, 10.51, True),
        (ProcessValueRole(deadband_pct=10), 100.0, 109.0, False),
        (ProcessValueRole(deadband_pct=10), 100.0, 89.0, True),
        (ProcessValueRole(deadband_abs=0.5, deadband_pct=10), 0.0, 0.4, False),  # the larger
        (ProcessValueRole(deadband_abs=0.5, deadband_pct=10), 100.0, 100.6, False),
        (ProcessValueRole(deadband_abs=5), True, False, True),  # non-numeric: any change
        (ProcessValueRole(deadband_abs=5), 1, True, True),
    ],
)
def test_deadband(role: ProcessValueRole, reported: Any, value: Any, expected: bool) -> None:
    assert beyond_deadband(role, reported, value) is expected


def test_unknown_tags_and_connections_are_ignored() -> None:
    deriver = Deriver(MIXED_ROLES)
    assert deriver.on_sample(good_sample("elsewhere.state", 6, T0)) == []
    assert deriver.on_connection(ConnectionChange("plc-9", False, T0)) == []
