"""Resolved master data (plain, frozen): what the OEE shell asks per site, line, equipment.

Built from a validated :class:`~collector.masterdata.models.MasterDataFile`; building
the pure calendar and settings objects may still raise ``CalendarError`` or
``OeeInputError``, which the loader turns into located issues.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from collector.masterdata.models import (
    CalendarModel,
    MasterDataFile,
    OeeModel,
    weekdays_of,
)
from collector.oee.calendar import Break, CalendarException, Shift, ShiftCalendar
from collector.oee.inputs import OeeSettings
from collector.records import Equipment

#: Changing this invalidates every cached result computed with older master data.
_FINGERPRINT_VERSION = "lineside-masterdata-1"


class EquipmentKey(NamedTuple):
    """An equipment path without the enterprise: master data is per enterprise."""

    site: str
    area: str
    line: str
    equipment: str

    @classmethod
    def parse(cls, path: str) -> EquipmentKey:
        """``"site/area/line/equipment"`` (already validated) -> key."""
        site, area, line, equipment = path.split("/")
        return cls(site, area, line, equipment)


@dataclass(frozen=True, slots=True)
class Product:
    """A product's ideal cycle time and its per-equipment overrides."""

    product_id: str
    name: str | None
    ideal_cycle_time_s: float
    overrides: Mapping[EquipmentKey, float]


@dataclass(frozen=True, slots=True)
class IdealCycleTimes:
    """Ideal cycle times (seconds per part) for one piece of equipment, by product id."""

    defaults: Mapping[str, float]
    overrides: Mapping[str, float]

    def for_product(self, product_id: str) -> float | None:
        """This equipment's override, else the product's default; None if unknown."""
        value = self.overrides.get(product_id)
        return self.defaults.get(product_id) if value is None else value

    def merged(self) -> Mapping[str, float]:
        """Overrides over defaults: ``OeeInputs.ideal_cycle_time_by_product_s``."""
        return MappingProxyType({**self.defaults, **self.overrides})


_NO_TIMES: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True)
class MasterData:
    """Calendars and where they apply, products, and the OEE settings (all read-only).

    ``assignments`` maps ``(site, line)`` to a calendar name; ``None`` stands for "any"
    (``(site, None)``: the whole site; ``(None, None)``: the default).
    """

    calendars: Mapping[str, ShiftCalendar]
    assignments: Mapping[tuple[str | None, str | None], str]
    products: Mapping[str, Product]
    settings: OeeSettings
    fingerprint: str
    _default_times: Mapping[str, float] = field(init=False, repr=False, compare=False)
    _override_times: Mapping[EquipmentKey, Mapping[str, float]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Indexed once: the shell asks per equipment and window, products rarely change.
        overrides: dict[EquipmentKey, dict[str, float]] = {}
        for product in self.products.values():
            for key, seconds in product.overrides.items():
                overrides.setdefault(key, {})[product.product_id] = seconds
        defaults = {p.product_id: p.ideal_cycle_time_s for p in self.products.values()}
        object.__setattr__(self, "_default_times", MappingProxyType(defaults))
        object.__setattr__(
            self,
            "_override_times",
            MappingProxyType({k: MappingProxyType(v) for k, v in overrides.items()}),
        )

    @classmethod
    def empty(cls) -> MasterData:
        """No master data: 24/7 everywhere, no products, default OEE settings."""
        return _empty()

    def calendar_name_for(self, site: str, line: str) -> str | None:
        """The calendar assigned to the line, else to the site, else the default."""
        for key in ((site, line), (site, None), (None, None)):
            name = self.assignments.get(key)
            if name is not None:
                return name
        return None

    def calendar_for(self, site: str, line: str) -> ShiftCalendar | None:
        """The line's shift calendar; None means no calendar: planned 24/7."""
        name = self.calendar_name_for(site, line)
        return None if name is None else self.calendars[name]

    def timezone_for(self, site: str, line: str) -> str:
        """The IANA timezone of the line's calendar (for hour and day buckets); else UTC."""
        calendar = self.calendar_for(site, line)
        return "UTC" if calendar is None else calendar.timezone

    def ideal_cycle_times(self, equipment: Equipment) -> IdealCycleTimes:
        """Every product's ideal cycle time, and those overridden for ``equipment``."""
        key = EquipmentKey(equipment.site, equipment.area, equipment.line, equipment.equipment)
        return IdealCycleTimes(self._default_times, self._override_times.get(key, _NO_TIMES))


@functools.cache
def _empty() -> MasterData:
    return resolve_masterdata(MasterDataFile())  # read-only, so one instance serves all


def build_calendar(model: CalendarModel) -> ShiftCalendar:
    """The pure calendar of a validated calendar model (may raise ``CalendarError``)."""
    shifts = tuple(
        Shift(
            name=shift.name,
            weekdays=weekdays_of(shift.days),
            start=shift.start,
            end=shift.end,
            breaks=tuple(Break(b.start, b.end) for b in shift.breaks),
        )
        for shift in model.shifts
    )
    exceptions = tuple(
        CalendarException(x.start, x.end, x.planned, x.name) for x in model.exceptions
    )
    return ShiftCalendar(model.timezone, shifts, frozenset(model.holidays), exceptions)


def build_settings(model: OeeModel) -> OeeSettings:
    """The engine's settings from the ``oee`` section (may raise ``OeeInputError``)."""
    defaults = OeeSettings()
    return OeeSettings(
        classification=MappingProxyType(dict(model.states)),
        micro_stop_threshold_s=model.micro_stop_threshold_s,
        micro_stop_states=defaults.micro_stop_states
        if model.micro_stop_states is None
        else frozenset(model.micro_stop_states),
        setup_states=defaults.setup_states
        if model.setup_states is None
        else frozenset(model.setup_states),
        startup_period_s=model.startup_period_s,
    )


def fingerprint_of(model: MasterDataFile) -> str:
    """sha256 of the file's meaning: comments, key order and spelled-out defaults aside."""
    canonical = json.dumps(
        model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(f"{_FINGERPRINT_VERSION}\n{canonical}".encode()).hexdigest()


def resolve_masterdata(model: MasterDataFile) -> MasterData:
    """Plain master data from a validated file (raises ``CalendarError``/``OeeInputError``)."""
    products = {
        product_id: Product(
            product_id,
            product.name,
            product.ideal_cycle_time_s,
            MappingProxyType(
                {EquipmentKey.parse(o.equipment): o.ideal_cycle_time_s for o in product.overrides}
            ),
        )
        for product_id, product in model.products.items()
    }
    return MasterData(
        calendars=MappingProxyType({n: build_calendar(c) for n, c in model.calendars.items()}),
        assignments=MappingProxyType({(a.site, a.line): a.calendar for a in model.assign}),
        products=MappingProxyType(products),
        settings=build_settings(model.oee),
        fingerprint=fingerprint_of(model),
    )
