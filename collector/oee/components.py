"""Additive OEE components: the times and counts every ratio is computed from.

Everything here adds up (``a + b``) across buckets and equipment, so rollups sum
components and recompute ratios instead of averaging percentages. Times are integer
microseconds; ideal times are exact ``Fraction`` seconds (count x ideal cycle time,
the float cycle time taken at its exact binary value).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from fractions import Fraction
from types import MappingProxyType

ParetoKey = tuple[str, int | None]

_EMPTY: Mapping = MappingProxyType({})


def _add_maps(a: Mapping, b: Mapping) -> Mapping:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + value
    return MappingProxyType(out)


@dataclass(frozen=True)
class OeeComponents:
    """Time elements (microseconds), ideal times (seconds) and counts of one scope."""

    #: Calendar time of the window(s).
    all_time_us: int = 0
    #: Time the calendar plans (whole window without a calendar).
    planned_time_us: int = 0
    #: Calendar breaks inside planned time (machine not running).
    planned_downtime_breaks_us: int = 0
    #: Time in states classified planned (``planned_stop``) inside planned time, outside breaks.
    planned_downtime_states_us: int = 0
    #: Running outside the calendar's planned time: added to planned busy time (flagged).
    unscheduled_running_us: int = 0
    #: PBT = planned time - planned downtime + unscheduled running.
    planned_busy_time_us: int = 0
    #: APT = running + micro-stops + states classified performance loss.
    actual_production_time_us: int = 0
    running_us: int = 0
    micro_stop_us: int = 0
    performance_state_us: int = 0
    #: Availability loss (PBT - APT), also by state below.
    downtime_us: int = 0
    downtime_by_state_us: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    #: Setup / changeover part of the downtime (``OeeSettings.setup_states``).
    setup_us: int = 0
    #: Offline and no-data time in planned time outside breaks, whatever their class
    #: (reported even when classified planned: data was lost).
    offline_us: int = 0
    no_data_us: int = 0
    #: Unplanned stop time (downtime and micro-stops) by (state, reason code).
    stops_by_reason_us: Mapping[ParetoKey, int] = field(default_factory=lambda: _EMPTY)
    #: Ideal time of the parts with a known ideal cycle time, split by quality.
    good_ideal_time_s: Fraction = Fraction(0)
    scrap_ideal_time_s: Fraction = Fraction(0)
    startup_scrap_ideal_time_s: Fraction = Fraction(0)
    good: int = 0
    scrap: int = 0
    startup_scrap: int = 0
    #: Parts (good + scrap) without an ideal cycle time: excluded from performance.
    parts_without_ideal_cycle_time: int = 0
    #: States not in the classification (counted as availability loss).
    unknown_states: frozenset[str] = frozenset()

    @property
    def total(self) -> int:
        return self.good + self.scrap

    @property
    def ideal_time_s(self) -> Fraction:
        """Ideal production time of all parts with a known ideal cycle time."""
        return self.good_ideal_time_s + self.scrap_ideal_time_s

    def __add__(self, other: OeeComponents) -> OeeComponents:
        if not isinstance(other, OeeComponents):
            return NotImplemented
        values = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, frozenset):
                values[f.name] = a | b
            elif isinstance(a, Mapping):
                values[f.name] = _add_maps(a, b)
            else:
                values[f.name] = a + b
        return OeeComponents(**values)


ZERO = OeeComponents()


_FIELDS = tuple(f.name for f in fields(OeeComponents))
_MAPS = frozenset(f for f in _FIELDS if isinstance(getattr(ZERO, f), Mapping))
_SETS = frozenset(f for f in _FIELDS if isinstance(getattr(ZERO, f), frozenset))


def sum_components(parts: list[OeeComponents]) -> OeeComponents:
    """The sum of components (an empty list gives all zeros); one pass per field, the
    same as ``a + b + ...`` (rollups of hundreds of buckets call this)."""
    if not parts:
        return ZERO
    if len(parts) == 1:
        return parts[0]
    values: dict = {}
    for name in _FIELDS:
        items = [getattr(p, name) for p in parts]
        if name in _MAPS:
            merged: dict = {}
            for mapping in items:
                for key, value in mapping.items():
                    merged[key] = merged.get(key, 0) + value
            values[name] = MappingProxyType(merged)
        elif name in _SETS:
            values[name] = frozenset().union(*items)
        else:
            values[name] = sum(items[1:], items[0])
    return OeeComponents(**values)
