"""OEE master data: calendar precedence, DST, holidays, exceptions, cycle times, settings,
fingerprint, the shipped example and the schema. Error cases are data:
tests/cases/masterdata/ (test_masterdata_cases.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.masterdata import (
    MasterData,
    load_masterdata,
    masterdata_schema_json,
    parse_masterdata,
)
from collector.oee import Break, Shift, ShiftCalendar, StateClass
from collector.records import Equipment
from lineside_common.yamlconfig import ConfigFileError

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "config" / "masterdata.example.yaml"

CALENDARS = """\
calendars:
  days:
    timezone: Europe/Berlin
    shifts:
      - {name: early, days: mon-fri, start: "06:00", end: "14:00",
         breaks: [{start: "09:00", end: "09:15"}]}
    holidays: [2026-12-25]
    exceptions:
      - {name: stocktake, start: "2026-12-30T06:00", end: "2026-12-30T10:00", planned: false}
      - {name: overtime, start: "2026-12-05T06:00", end: "2026-12-05T12:00", planned: true}
  nights:
    timezone: Europe/Berlin
    shifts:
      - {name: night, days: mon-sun, start: "22:00", end: "06:00"}
  chicago:
    timezone: America/Chicago
    shifts:
      - {name: day, days: mon-sun, start: "00:00", end: "00:00"}
"""


def parse(text: str) -> MasterData:
    return parse_masterdata(text, "masterdata.yaml")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def planned_hours(calendar: ShiftCalendar | None, start: datetime, end: datetime) -> float:
    assert calendar is not None
    spans = calendar.planned_time(start, end).planned
    return sum((s.end - s.start for s in spans), timedelta()).total_seconds() / 3600


# -- which calendar applies ---------------------------------------------------------------


def test_line_entry_beats_site_entry_beats_default() -> None:
    data = parse(
        CALENDARS
        + """\
assign:
  - {calendar: chicago}
  - {site: s1, calendar: days}
  - {site: s1, line: line2, calendar: nights}
"""
    )
    assert data.calendar_name_for("s1", "line2") == "nights"
    assert data.calendar_name_for("s1", "line1") == "days"
    assert data.calendar_name_for("s2", "line2") == "chicago"  # line2 of another site
    assert data.calendar_for("s1", "line2") is data.calendars["nights"]
    assert data.timezone_for("s1", "line1") == "Europe/Berlin"
    assert data.timezone_for("s9", "x") == "America/Chicago"


def test_no_matching_entry_means_24_7_in_utc() -> None:
    data = parse(CALENDARS + "assign:\n  - {site: s1, calendar: days}\n")
    assert data.calendar_for("s2", "line1") is None
    assert data.timezone_for("s2", "line1") == "UTC"
    empty = MasterData.empty()
    assert empty.calendar_for("s1", "line1") is None
    assert empty.timezone_for("s1", "line1") == "UTC"
    assert empty.products == {}


def test_empty_file_and_empty_sections_are_the_empty_master_data() -> None:
    assert parse("").fingerprint == MasterData.empty().fingerprint
    assert parse("# nothing yet\ncalendars:\nproducts:\n").fingerprint == (
        MasterData.empty().fingerprint
    )


# -- the calendar as resolved -------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "hours"),
    [
        # The night 2026-03-28 22:00 -> 03-29 06:00 loses the skipped hour (spring forward).
        ((utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)), 7),
        # The night 2026-10-24 22:00 -> 10-25 06:00 repeats an hour (fall back).
        ((utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)), 9),
        ((utc(2026, 1, 10, 12), utc(2026, 1, 11, 12)), 8),
    ],
)
def test_night_shift_across_dst(window: tuple[datetime, datetime], hours: float) -> None:
    data = parse(CALENDARS + "assign:\n  - {site: s1, calendar: nights}\n")
    assert planned_hours(data.calendar_for("s1", "l1"), *window) == hours


def test_holidays_and_exceptions() -> None:
    data = parse(CALENDARS + "assign:\n  - {calendar: days}\n")
    calendar = data.calendar_for("s1", "l1")
    # Friday 2026-12-25 is a holiday; Thursday the 24th is not.
    assert planned_hours(calendar, utc(2026, 12, 25), utc(2026, 12, 26)) == 0
    assert planned_hours(calendar, utc(2026, 12, 24), utc(2026, 12, 25)) == 8
    # Stocktake removes 06:00-10:00 local and the break inside it.
    assert calendar is not None
    stocktake = calendar.planned_time(utc(2026, 12, 30), utc(2026, 12, 31))
    assert [(s.start, s.end) for s in stocktake.planned] == [
        (utc(2026, 12, 30, 9), utc(2026, 12, 30, 13))
    ]
    assert stocktake.breaks == ()
    # Overtime on Saturday 2026-12-05 06:00-12:00 local (CET, UTC+1).
    overtime = calendar.planned_time(utc(2026, 12, 5), utc(2026, 12, 6))
    assert [(s.start, s.end) for s in overtime.planned] == [
        (utc(2026, 12, 5, 5), utc(2026, 12, 5, 11))
    ]


def test_shift_fields_reach_the_pure_calendar() -> None:
    data = parse(CALENDARS + "assign:\n  - {calendar: days}\n")
    assert data.calendars["days"].shifts == (
        Shift("early", frozenset(range(5)), time(6), time(14), (Break(time(9), time(9, 15)),)),
    )


@pytest.mark.parametrize(
    ("days", "weekdays"),
    [
        ("mon", {0}),
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("[sat-mon]", {5, 6, 0}),  # a range may wrap the week
        ("[mon, wed-thu, SUN]", {0, 2, 3, 6}),
    ],
)
def test_weekday_specs(days: str, weekdays: set[int]) -> None:
    text = f"""\
calendars:
  c:
    timezone: UTC
    shifts: [{{name: s, days: {days}, start: "06:00", end: "14:00"}}]
"""
    assert parse(text).calendars["c"].shifts[0].weekdays == weekdays


@settings(max_examples=150, deadline=None)
@given(
    shift=st.tuples(st.integers(0, 47), st.integers(0, 47)),
    pause=st.tuples(st.integers(0, 47), st.integers(1, 47)),
)
def test_a_break_is_accepted_exactly_when_the_calendar_keeps_all_of_it(
    shift: tuple[int, int], pause: tuple[int, int]
) -> None:
    def hhmm(half_hours: int) -> str:
        return f"{half_hours // 2:02d}:{half_hours % 2 * 30:02d}"

    start, end = (hhmm(h) for h in shift)
    b_start, b_end = hhmm(pause[0]), hhmm((pause[0] + pause[1]) % 48)
    text = f"""\
calendars:
  c:
    timezone: UTC
    shifts:
      - {{name: s, days: mon-sun, start: "{start}", end: "{end}",
         breaks: [{{start: "{b_start}", end: "{b_end}"}}]}}
"""
    nominal = timedelta(minutes=30 * pause[1])
    # The pure calendar clips a break to its shift: what it keeps tells inside or not.
    pure = ShiftCalendar(
        "UTC",
        (
            Shift(
                "s",
                frozenset(range(7)),
                time.fromisoformat(start),
                time.fromisoformat(end),
                (Break(time.fromisoformat(b_start), time.fromisoformat(b_end)),),
            ),
        ),
    )
    instance = pure.shift_instances(utc(2026, 1, 5), utc(2026, 1, 6))[0]
    kept = sum((b.end - b.start for b in instance.breaks), timedelta())
    if kept == nominal:
        parse(text)
    else:
        with pytest.raises(ConfigFileError, match="is not inside the shift"):
            parse(text)


# -- products and settings ----------------------------------------------------------------

PRODUCTS = """\
products:
  widget-a: {ideal_cycle_time_s: 2.5, name: Widget A}
  widget-b:
    ideal_cycle_time_s: 4
    overrides:
      - {equipment: s1/assembly/line1/press1, ideal_cycle_time_s: 3.2}
  4711: {ideal_cycle_time_s: 10}
"""


def test_ideal_cycle_times_per_equipment() -> None:
    data = parse(PRODUCTS)
    press = data.ideal_cycle_times(Equipment("acme", "s1", "assembly", "line1", "press1"))
    assert press.defaults == {"widget-a": 2.5, "widget-b": 4.0, "4711": 10.0}
    assert press.overrides == {"widget-b": 3.2}
    assert press.for_product("widget-b") == 3.2
    assert press.for_product("widget-a") == 2.5
    assert press.for_product("unknown") is None
    assert press.merged() == {"widget-a": 2.5, "widget-b": 3.2, "4711": 10.0}
    other = data.ideal_cycle_times(Equipment("acme", "s1", "assembly", "line2", "press1"))
    assert other.overrides == {}
    assert other.merged()["widget-b"] == 4.0
    assert data.products["widget-a"].name == "Widget A"


def test_oee_settings() -> None:
    data = parse(
        """\
oee:
  micro_stop_threshold_s: 90
  startup_period_s: 300
  states: {offline: planned, changeover: performance_loss}
  setup_states: [changeover, planned_stop]
"""
    )
    assert data.settings.micro_stop_threshold_s == 90
    assert data.settings.startup_period_s == 300
    assert data.settings.class_of("offline") is StateClass.PLANNED
    assert data.settings.class_of("changeover") is StateClass.PERFORMANCE_LOSS
    assert data.settings.class_of("idle") is StateClass.AVAILABILITY_LOSS  # default kept
    assert data.settings.setup_states == {"changeover", "planned_stop"}
    assert data.settings.micro_stop_states == MasterData.empty().settings.micro_stop_states


def test_default_settings_count_offline_as_downtime_and_micro_stops_under_120_s() -> None:
    defaults = MasterData.empty().settings
    assert defaults.class_of("offline") is StateClass.AVAILABILITY_LOSS
    assert defaults.micro_stop_threshold_s == 120


# -- fingerprint --------------------------------------------------------------------------


def test_fingerprint_follows_the_content_not_the_layout() -> None:
    base = parse(CALENDARS + PRODUCTS)
    reordered = parse(
        PRODUCTS.replace(
            "{ideal_cycle_time_s: 2.5, name: Widget A}", "{name: Widget A, ideal_cycle_time_s: 2.5}"
        )
        + "# the calendars, below the products now\n"
        + CALENDARS.replace('start: "06:00", end: "14:00"', 'end: "14:00", start: "06:00"')
    )
    assert reordered.fingerprint == base.fingerprint
    changed = parse(CALENDARS + PRODUCTS.replace("2.5", "2.4"))
    assert changed.fingerprint != base.fingerprint
    moved_break = parse(CALENDARS.replace("09:15", "09:20") + PRODUCTS)
    assert moved_break.fingerprint != base.fingerprint
    assert len(base.fingerprint) == 64


# -- files --------------------------------------------------------------------------------


def test_shipped_example_loads() -> None:
    data = load_masterdata(EXAMPLE)
    assert data.calendar_name_for("s1", "line2") == "three-shifts"
    assert data.products
    assert data.fingerprint != MasterData.empty().fingerprint


def test_errors_name_the_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "masterdata.yaml"
    path.write_text("products:\n  a: {ideal_cycle_time_s: 0}\n")
    with pytest.raises(ConfigFileError) as caught:
        load_masterdata(path)
    assert str(caught.value).startswith(f"{path}:2:")
    with pytest.raises(ConfigFileError, match="cannot read"):
        load_masterdata(tmp_path / "missing.yaml")
    with pytest.raises(ConfigFileError, match=r"masterdata.yaml:\d+:\d+: YAML: "):
        parse("calendars:\n  a: [unclosed\n  b: 1\n")


def test_schema_documents_every_key() -> None:
    schema = json.loads(masterdata_schema_json())
    assert schema["title"] == "Lineside OEE master data"
    assert set(schema["properties"]) == {"calendars", "assign", "products", "oee"}
    objects = [schema, *(d for d in schema["$defs"].values() if d.get("type") == "object")]
    for definition in objects:
        assert definition.get("additionalProperties") is False, definition.get("title")
        for name, prop in definition["properties"].items():
            assert prop.get("description"), f"{definition.get('title')}.{name}"
