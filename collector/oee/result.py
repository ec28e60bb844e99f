"""Ratios, six big losses, Pareto and flags derived from ``OeeComponents``.

One function, ``result_from_components``, turns components into a result; the engine,
the buckets and the rollups all go through it, so a rollup is exactly the result of
the summed components. Ratios are exact ``Fraction``s: never rounded inside, so
OEE == A x P x Q holds exactly; convert with ``float()`` or round only for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from collector.oee.components import OeeComponents, ParetoKey

_US_PER_S = 1_000_000


def seconds(value_us: int) -> Fraction:
    """Exact seconds of integer microseconds."""
    return Fraction(value_us, _US_PER_S)


@dataclass(frozen=True, slots=True)
class Ratio:
    """A ratio, or ``None`` with the reason it is undefined (a zero denominator)."""

    value: Fraction | None
    reason: str | None = None

    def as_float(self) -> float | None:
        return None if self.value is None else float(self.value)


@dataclass(frozen=True, slots=True)
class Flag:
    """Something the reader of a result must know (data quality, suspicious values)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class SixLosses:
    """The six big losses as time in seconds; they add up to PBT - good ideal time."""

    breakdowns_s: Fraction
    setup_changeover_s: Fraction
    small_stops_s: Fraction
    reduced_speed_s: Fraction
    startup_rejects_s: Fraction
    production_rejects_s: Fraction


@dataclass(frozen=True, slots=True)
class ParetoEntry:
    """Unplanned stop time of one (state, reason code), largest first."""

    state: str
    reason_code: int | None
    time_s: Fraction
    share: Fraction
    cumulative_share: Fraction


@dataclass(frozen=True)
class OeeResult:
    """OEE of one scope (equipment, line, area, site) over one window or bucket."""

    components: OeeComponents
    availability: Ratio
    performance: Ratio
    quality: Ratio
    oee: Ratio
    utilisation: Ratio
    teep: Ratio
    six_losses: SixLosses
    pareto: tuple[ParetoEntry, ...]
    flags: tuple[Flag, ...]

    def flag_codes(self) -> set[str]:
        return {f.code for f in self.flags}

    def to_dict(self, *, pareto: bool = True) -> dict[str, Any]:
        """JSON-friendly view: ratios as floats (unrounded), times in seconds; without the
        stop Pareto when ``pareto`` is false."""
        c = self.components
        ratios = ("availability", "performance", "quality", "oee", "utilisation", "teep")
        return {
            **{name: getattr(self, name).as_float() for name in ratios},
            "reasons": {
                name: getattr(self, name).reason
                for name in ratios
                if getattr(self, name).reason is not None
            },
            "times_s": {
                "all_time": float(seconds(c.all_time_us)),
                "planned_time": float(seconds(c.planned_time_us)),
                "planned_downtime_breaks": float(seconds(c.planned_downtime_breaks_us)),
                "planned_downtime_states": float(seconds(c.planned_downtime_states_us)),
                "unscheduled_running": float(seconds(c.unscheduled_running_us)),
                "planned_busy_time": float(seconds(c.planned_busy_time_us)),
                "actual_production_time": float(seconds(c.actual_production_time_us)),
                "running": float(seconds(c.running_us)),
                "micro_stops": float(seconds(c.micro_stop_us)),
                "performance_states": float(seconds(c.performance_state_us)),
                "downtime": float(seconds(c.downtime_us)),
                "setup": float(seconds(c.setup_us)),
                "offline": float(seconds(c.offline_us)),
                "no_data": float(seconds(c.no_data_us)),
                "ideal_production": float(c.ideal_time_s),
            },
            "downtime_by_state_s": {
                k: float(seconds(v)) for k, v in sorted(c.downtime_by_state_us.items())
            },
            "counts": {
                "good": c.good,
                "scrap": c.scrap,
                "total": c.total,
                "startup_scrap": c.startup_scrap,
                "without_ideal_cycle_time": c.parts_without_ideal_cycle_time,
            },
            "six_losses_s": {
                name: float(getattr(self.six_losses, name)) for name in SixLosses.__slots__
            },
            **(
                {
                    "pareto": [
                        {
                            "state": e.state,
                            "reason_code": e.reason_code,
                            "time_s": float(e.time_s),
                            "share": float(e.share),
                            "cumulative_share": float(e.cumulative_share),
                        }
                        for e in self.pareto
                    ]
                }
                if pareto
                else {}
            ),
            "flags": sorted(f.code for f in self.flags),
        }


def _ratio(num: Fraction | int, den: Fraction | int, reason: str) -> Ratio:
    if den == 0:
        return Ratio(None, reason)
    return Ratio(Fraction(num) / Fraction(den))


def _performance(c: OeeComponents) -> Ratio:
    if c.actual_production_time_us == 0:
        return Ratio(None, "no actual production time (the equipment never ran)")
    if c.total > 0 and c.parts_without_ideal_cycle_time == c.total:
        return Ratio(None, "no ideal cycle time is known for any counted part")
    return Ratio(c.ideal_time_s / seconds(c.actual_production_time_us))


def _oee(a: Ratio, p: Ratio, q: Ratio) -> Ratio:
    # A planned machine that never produced has zero effectiveness: with A = 0 the
    # product is 0 whatever P and Q would have been, though they are undefined.
    if a.value == 0:
        return Ratio(Fraction(0))
    missing = [f"{n} undefined" for n, r in (("A", a), ("P", p), ("Q", q)) if r.value is None]
    if missing:
        return Ratio(None, "; ".join(missing))
    return Ratio(Fraction(a.value) * Fraction(p.value) * Fraction(q.value))


def _six_losses(c: OeeComponents) -> SixLosses:
    small_stops_us = c.micro_stop_us + c.performance_state_us
    return SixLosses(
        breakdowns_s=seconds(c.downtime_us - c.setup_us),
        setup_changeover_s=seconds(c.setup_us),
        small_stops_s=seconds(small_stops_us),
        # What is left of APT after small stops and the ideal time of the parts made;
        # negative when performance is above 100 % (flagged).
        reduced_speed_s=seconds(c.actual_production_time_us - small_stops_us) - c.ideal_time_s,
        startup_rejects_s=c.startup_scrap_ideal_time_s,
        production_rejects_s=c.scrap_ideal_time_s - c.startup_scrap_ideal_time_s,
    )


def _pareto(stops: dict[ParetoKey, int]) -> tuple[ParetoEntry, ...]:
    grand = sum(stops.values())
    if grand == 0:
        return ()
    ordered = sorted(
        ((k, v) for k, v in stops.items() if v > 0),
        key=lambda kv: (-kv[1], kv[0][0], -1 if kv[0][1] is None else kv[0][1]),
    )
    entries = []
    running = 0
    for (state, reason), time_us in ordered:
        running += time_us
        entries.append(
            ParetoEntry(
                state, reason, seconds(time_us), Fraction(time_us, grand), Fraction(running, grand)
            )
        )
    return tuple(entries)


def _flags(c: OeeComponents, performance: Ratio) -> tuple[Flag, ...]:
    flags = []
    if performance.value is not None and performance.value > 1:
        flags.append(
            Flag(
                "performance_above_100",
                f"performance is {float(performance.value):.1%}: the ideal cycle time is "
                "probably too long (or counts are too high); not capped",
            )
        )
    if c.parts_without_ideal_cycle_time:
        flags.append(
            Flag(
                "missing_ideal_cycle_time",
                f"{c.parts_without_ideal_cycle_time} parts have no ideal cycle time and are "
                "left out of the performance numerator (quality still counts them)",
            )
        )
    if c.unscheduled_running_us:
        flags.append(
            Flag(
                "running_outside_plan",
                f"{float(seconds(c.unscheduled_running_us)):g} s of running outside planned "
                "time were added to planned busy time",
            )
        )
    if c.offline_us:
        flags.append(Flag("offline", f"{float(seconds(c.offline_us)):g} s offline in planned time"))
    if c.no_data_us:
        flags.append(Flag("no_data", f"{float(seconds(c.no_data_us)):g} s without state data"))
    if c.unknown_states:
        flags.append(
            Flag(
                "unknown_state",
                f"states {sorted(c.unknown_states)} are not classified; counted as "
                "availability loss",
            )
        )
    return tuple(flags)


def result_from_components(c: OeeComponents, *, pareto: bool = True) -> OeeResult:
    """Ratios, losses, Pareto and flags of components (the one place they are computed).

    ``pareto=False`` leaves the stop Pareto empty (per-bucket results of a long window,
    where nobody reads it; the components still hold the stop times)."""
    pbt, apt = c.planned_busy_time_us, c.actual_production_time_us
    availability = _ratio(apt, pbt, "no planned busy time in the window")
    performance = _performance(c)
    quality = _ratio(c.good, c.total, "no parts counted")
    oee = _oee(availability, performance, quality)
    utilisation = _ratio(pbt, c.all_time_us, "empty window")
    if oee.value is None or utilisation.value is None:
        teep = Ratio(None, oee.reason or utilisation.reason)
    else:
        teep = Ratio(oee.value * utilisation.value)
    return OeeResult(
        components=c,
        availability=availability,
        performance=performance,
        quality=quality,
        oee=oee,
        utilisation=utilisation,
        teep=teep,
        six_losses=_six_losses(c),
        pareto=_pareto(dict(c.stops_by_reason_us)) if pareto else (),
        flags=_flags(c, performance),
    )
