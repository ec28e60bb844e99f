"""The OEE master data file (pydantic v2): shift calendars, products, state classification.

Plant IT edits this file, so the models are its documented schema: every field has a
description, unknown keys are errors, and every value is checked where it is written
(times, weekdays, timezones, cycle times, equipment paths, state names). Checks that
need more than one value (a break inside its shift, a calendar name in ``assign``) are
in ``collector.masterdata.loader``, which locates them in the file.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import zoneinfo
from datetime import date, datetime, time
from typing import Annotated, Any, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from collector.oee.inputs import NO_DATA, StateClass
from lineside_protocol.errors import ProtocolError
from lineside_protocol.states import EquipmentState
from lineside_protocol.topics import LEVEL_PATTERN, Level, check_level

#: Every state the classification may name: the wire contract's states and ``no_data``.
STATE_NAMES: tuple[str, ...] = (*get_args(EquipmentState), NO_DATA)
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EQUIPMENT_PATH_PARTS = ("site", "area", "line", "equipment")

_DAY_ALTERNATIVES = "|".join(WEEKDAYS)
_DAY_PATTERN = rf"^({_DAY_ALTERNATIVES})(-({_DAY_ALTERNATIVES}))?$"
_DAY_SCHEMA = {"type": "string", "pattern": _DAY_PATTERN}
_TIME_PATTERN = r"^([01]?\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"
_TIME_RE = re.compile(_TIME_PATTERN)
_DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$"
_LEVEL = LEVEL_PATTERN.strip("^$")
_PATH_PATTERN = rf"^{_LEVEL}(/{_LEVEL}){{3}}$"


# -- scalar types -------------------------------------------------------------------------


def _wall_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and _TIME_RE.match(value.strip()):
        parts = [int(p) for p in value.strip().split(":")]
        return time(*parts)
    raise ValueError(
        f"{value!r} is not a time of day: write HH:MM or HH:MM:SS, 24-hour, in quotes "
        '(e.g. "06:00"; midnight is "00:00")'
    )


WallTime = Annotated[
    time,
    BeforeValidator(_wall_time),
    WithJsonSchema({"type": "string", "pattern": _TIME_PATTERN}),
]
"""A local wall-clock time, ``"HH:MM"`` or ``"HH:MM:SS"``."""


def _local_datetime(value: Any) -> datetime:
    parsed = value if isinstance(value, datetime) else _iso_datetime(value)
    if parsed is None:
        raise ValueError(
            f"{value!r} is not a date and time: write YYYY-MM-DDTHH:MM in the calendar's "
            'local time, in quotes (e.g. "2026-12-30T06:00")'
        )
    if parsed.tzinfo is not None:
        # One convention for the whole calendar: local wall time in its timezone.
        raise ValueError(
            f"{value!s}: write local time without a UTC offset, in the calendar's timezone"
        )
    return parsed


def _iso_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


LocalDateTime = Annotated[
    datetime,
    BeforeValidator(_local_datetime),
    WithJsonSchema({"type": "string", "pattern": _DATETIME_PATTERN}),
]
"""A local date and time (no UTC offset), wall time in the calendar's timezone."""


def _day_spec(value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if isinstance(text, str) and re.match(_DAY_PATTERN, text):
        return text
    raise ValueError(
        f"{value!r} is not a weekday: use {', '.join(WEEKDAYS)} or a range such as mon-fri"
    )


DaySpec = Annotated[
    str,
    BeforeValidator(_day_spec),
    WithJsonSchema(_DAY_SCHEMA),
]
"""A weekday (``mon``) or an inclusive range (``mon-fri``; ``sat-mon`` wraps the week)."""


Days = Annotated[
    list[DaySpec],
    BeforeValidator(lambda value: [value] if isinstance(value, str) else value),
    WithJsonSchema({"anyOf": [_DAY_SCHEMA, {"type": "array", "items": _DAY_SCHEMA}]}),
]
"""Weekdays as one spec (``mon-fri``) or a list of them."""


def weekdays_of(specs: list[str]) -> frozenset[int]:
    """Weekday numbers (0 = Monday) named by day specs such as ``["mon-fri", "sun"]``."""
    days: set[int] = set()
    for spec in specs:
        first, _, last = spec.partition("-")
        lo = WEEKDAYS.index(first)
        hi = WEEKDAYS.index(last or first)
        days.update(d % 7 for d in range(lo, hi + 1 if hi >= lo else hi + 8))
    return frozenset(days)


@functools.cache
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(value, _zone_names(), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown timezone {value!r}: use an IANA zone name such as 'Europe/Berlin'{hint}"
        ) from None
    return value


def _seconds_per_part(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"ideal cycle time must be a number of seconds greater than 0, got {value!r}"
        )
    return value


CycleTime = Annotated[
    float,
    AfterValidator(_seconds_per_part),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0}),
]


def _equipment_path(value: str) -> str:
    parts = value.split("/")
    if len(parts) != len(EQUIPMENT_PATH_PARTS):
        raise ValueError(
            f"equipment path {value!r} has {len(parts)} part(s); write "
            "site/area/line/equipment, e.g. s1/assembly/line1/press1"
        )
    for what, part in zip(EQUIPMENT_PATH_PARTS, parts, strict=True):
        try:
            check_level(part, what)
        except ProtocolError as exc:
            raise ValueError(f"equipment path {value!r}: {exc.message}") from None
    return value


EquipmentPathText = Annotated[
    str,
    AfterValidator(_equipment_path),
    WithJsonSchema({"type": "string", "pattern": _PATH_PATTERN}),
]


def _state_name(value: str) -> str:
    if value in STATE_NAMES:
        return value
    close = difflib.get_close_matches(value, STATE_NAMES, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(f"unknown state {value!r}; {hint}states are: {', '.join(STATE_NAMES)}")


StateName = Annotated[str, AfterValidator(_state_name), WithJsonSchema({"enum": list(STATE_NAMES)})]

Name = Annotated[str, Field(min_length=1, max_length=100)]


# -- models -------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BreakModel(_Section):
    """A break inside a shift (planned downtime), in local wall time."""

    start: WallTime = Field(description='Local start, "HH:MM"')
    end: WallTime = Field(description='Local end, "HH:MM"; after midnight in a night shift')


class ShiftModel(_Section):
    """A shift that starts on the given weekdays at ``start`` and ends at ``end``."""

    name: Name = Field(description="Shift name, used for shift buckets and reports")
    days: Days = Field(
        min_length=1,
        description="Weekdays the shift starts on: mon..sun, or ranges such as mon-fri; "
        "a list or a single value",
    )
    start: WallTime = Field(description='Local start time, "HH:MM" (or "HH:MM:SS")')
    end: WallTime = Field(
        description="Local end time; at or before the start means the next day (night shift, "
        '"22:00" to "06:00"); equal to the start means 24 hours'
    )
    breaks: list[BreakModel] = Field(
        default_factory=list, description="Breaks inside this shift (planned downtime)"
    )


class ExceptionModel(_Section):
    """A one-off change to the calendar: overtime (planned) or a shutdown (not planned)."""

    name: str = Field("", max_length=100, description="What it is, for people reading the file")
    start: LocalDateTime = Field(description='Local start, "YYYY-MM-DDTHH:MM"')
    end: LocalDateTime = Field(description='Local end, "YYYY-MM-DDTHH:MM"; after start')
    planned: bool = Field(
        description="true: planned time is added (overtime, no breaks); false: planned time "
        "and its breaks are removed (shutdown, stocktake)"
    )


class CalendarModel(_Section):
    """A shift calendar: weekly shifts, holidays and exceptions in one timezone."""

    timezone: Annotated[str, AfterValidator(_timezone)] = Field(
        description="IANA timezone of the plant, e.g. Europe/Berlin; shift times are local "
        "wall-clock times in it (DST handled per shift)"
    )
    shifts: list[ShiftModel] = Field(description="The weekly shifts")
    holidays: list[date] = Field(
        default_factory=list,
        description="Dates (YYYY-MM-DD) on which no shift starts; a night shift starting "
        "the evening before still runs",
    )
    exceptions: list[ExceptionModel] = Field(
        default_factory=list, description="One-off overtime or shutdowns"
    )


class AssignModel(_Section):
    """Which calendar applies where: a line entry beats a site entry beats the default."""

    site: Level | None = Field(None, description="Site (ISA-95 name as in the topics)")
    line: Level | None = Field(
        None, description="Line within the site (needs site); omit for the whole site"
    )
    calendar: Name = Field(description="Name of a calendar under calendars")

    @model_validator(mode="after")
    def _line_needs_site(self) -> AssignModel:
        if self.line is not None and self.site is None:
            raise ValueError(f"line {self.line!r} needs a site: line names repeat across sites")
        return self


class OverrideModel(_Section):
    """The ideal cycle time of a product on one piece of equipment."""

    equipment: EquipmentPathText = Field(
        description="Equipment path site/area/line/equipment, as in the MQTT topics"
    )
    ideal_cycle_time_s: CycleTime = Field(description="Seconds per part at full speed, > 0")


class ProductModel(_Section):
    """A product and its ideal cycle time (used when a run does not carry its own)."""

    name: str | None = Field(None, max_length=200, description="Display name")
    ideal_cycle_time_s: CycleTime = Field(description="Seconds per part at full speed, > 0")
    overrides: list[OverrideModel] = Field(
        default_factory=list, description="Per-equipment ideal cycle times of this product"
    )


class OeeModel(_Section):
    """How machine states count in the OEE time model."""

    micro_stop_threshold_s: float = Field(
        120.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Stops strictly shorter than this are micro-stops (performance loss); "
        "0 disables micro-stops. At most 3600: the store tells what a late event changed, "
        "and the OEE reader looks back for the start of a stop, one hour at most",
    )
    startup_period_s: float = Field(
        0.0,
        ge=0,
        allow_inf_nan=False,
        description="Scrap counted within this many seconds after a run starts is a startup "
        "reject (0: none)",
    )
    states: dict[StateName, StateClass] = Field(
        default_factory=dict,
        description="State -> production | planned | availability_loss | performance_loss, "
        "merged over the defaults (only running is production)",
    )
    micro_stop_states: list[StateName] | None = Field(
        None,
        description="States whose short stops are micro-stops; default unplanned_stop, idle, "
        "starved, blocked",
    )
    setup_states: list[StateName] | None = Field(
        None, description="States counted as setup & changeover loss; default changeover"
    )


class MasterDataFile(_Section):
    """The whole master data file: calendars, where they apply, products, OEE settings."""

    calendars: dict[Name, CalendarModel] = Field(
        default_factory=dict, description="Shift calendars by name"
    )
    assign: list[AssignModel] = Field(
        default_factory=list,
        description="Which calendar applies to which site or line; no match means 24/7",
    )
    products: dict[Name, ProductModel] = Field(
        default_factory=dict, description="Products by product id (as in production events)"
    )
    oee: OeeModel = Field(default_factory=OeeModel, description="State classification etc.")
