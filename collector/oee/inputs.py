"""The engine's inputs as plain data, and its settings (state classification etc.).

The rows mirror the fact tables ``state_intervals``, ``production_counts`` and
``production_runs``; the shell reads them and hands them over unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from collector.oee.errors import OeeInputError

#: State of time for which no state interval is known (before the first state change,
#: or a gap): the engine fills it in so that every microsecond of a window is classified.
NO_DATA = "no_data"
RUNNING = "running"
OFFLINE = "offline"


class StateClass(StrEnum):
    """Where time in a state goes in the ISO 22400 time model."""

    #: Actual production time (only ``running``).
    PRODUCTION = "production"
    #: Planned downtime: removed from planned busy time, no loss.
    PLANNED = "planned"
    #: Unplanned downtime: planned busy time that is not production time (availability loss).
    AVAILABILITY_LOSS = "availability_loss"
    #: Counted as production time, so it lowers performance (for example starved/blocked
    #: on a balanced line, if a plant wants it there).
    PERFORMANCE_LOSS = "performance_loss"


DEFAULT_CLASSIFICATION: Mapping[str, StateClass] = MappingProxyType(
    {
        "running": StateClass.PRODUCTION,
        "idle": StateClass.AVAILABILITY_LOSS,
        "starved": StateClass.AVAILABILITY_LOSS,
        "blocked": StateClass.AVAILABILITY_LOSS,
        "planned_stop": StateClass.PLANNED,
        "unplanned_stop": StateClass.AVAILABILITY_LOSS,
        "changeover": StateClass.AVAILABILITY_LOSS,
        "offline": StateClass.AVAILABILITY_LOSS,
        NO_DATA: StateClass.AVAILABILITY_LOSS,
    }
)


@dataclass(frozen=True, slots=True)
class StateInterval:
    """A state from ``start`` to ``end`` (``None``: still current).

    Pass intervals unclipped when you can: a stop crossing the window edge is judged
    a micro-stop or not by its full length.
    """

    start: datetime
    end: datetime | None
    state: str
    reason_code: int | None = None


@dataclass(frozen=True, slots=True)
class CountRecord:
    """Parts counted at ``time`` (the end of the count interval ``(interval_start, time]``)."""

    time: datetime
    good: int
    scrap: int
    product_id: str | None = None

    @property
    def total(self) -> int:
        return self.good + self.scrap


@dataclass(frozen=True, slots=True)
class ProductionRun:
    """A production run ``(start, end]`` (``end`` ``None``: still open)."""

    start: datetime
    end: datetime | None
    product_id: str | None = None
    ideal_cycle_time_s: float | None = None


@dataclass(frozen=True, slots=True)
class TimeSpan:
    """A UTC time span ``[start, end)``."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class OeeInputs:
    """Everything the engine needs about one piece of equipment.

    ``planned`` is the calendar's planned (busy) time; ``None`` means 24/7, the whole
    window planned. ``breaks`` is planned downtime from the calendar.
    ``ideal_cycle_time_by_product_s`` is master data used when the covering run has no
    ideal cycle time.
    """

    states: Sequence[StateInterval] = ()
    counts: Sequence[CountRecord] = ()
    runs: Sequence[ProductionRun] = ()
    planned: Sequence[TimeSpan] | None = None
    breaks: Sequence[TimeSpan] = ()
    ideal_cycle_time_by_product_s: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({})
    )


@dataclass(frozen=True, slots=True)
class OeeSettings:
    """How states are classified and what counts as a micro-stop.

    ``classification`` is merged over ``DEFAULT_CLASSIFICATION``; a state missing from
    both (a future protocol value) counts as availability loss and is flagged.
    """

    classification: Mapping[str, StateClass] = field(default_factory=lambda: MappingProxyType({}))
    micro_stop_threshold_s: float = 120.0
    micro_stop_states: frozenset[str] = frozenset({"unplanned_stop", "idle", "starved", "blocked"})
    setup_states: frozenset[str] = frozenset({"changeover"})
    #: Scrap counted within this many seconds after a run starts is a startup reject.
    startup_period_s: float = 0.0

    def __post_init__(self) -> None:
        for state, klass in self.classification.items():
            if klass is StateClass.PRODUCTION and state != RUNNING:
                raise OeeInputError(
                    f"state {state!r}: only 'running' can be production time; "
                    "use performance_loss to count it inside actual production time"
                )
        if self.classification.get(RUNNING, StateClass.PRODUCTION) is not StateClass.PRODUCTION:
            raise OeeInputError("state 'running' must stay production time")
        for name, value in (
            ("micro_stop_threshold_s", self.micro_stop_threshold_s),
            ("startup_period_s", self.startup_period_s),
        ):
            if not math.isfinite(value) or value < 0:
                raise OeeInputError(f"{name} must be a finite number >= 0, got {value!r}")

    def class_of(self, state: str) -> StateClass | None:
        """The class of ``state``, ``None`` if the state is unknown."""
        klass = self.classification.get(state)
        if klass is None:
            klass = DEFAULT_CLASSIFICATION.get(state)
        return klass


DEFAULT_SETTINGS = OeeSettings()
