"""OEE engine (ISO 22400-2), pure and I/O-free: facts in, OEE results out.

See docs/oee.md for the definitions as implemented.
"""

from __future__ import annotations

from collector.oee.buckets import boundaries_from_spans, day_boundaries, hour_boundaries
from collector.oee.calendar import (
    Break,
    CalendarException,
    PlannedTime,
    Shift,
    ShiftCalendar,
    ShiftInstance,
    planned_time,
)
from collector.oee.components import OeeComponents, sum_components
from collector.oee.engine import BucketResult, compute_oee, compute_oee_buckets
from collector.oee.errors import CalendarError, OeeError, OeeInputError
from collector.oee.inputs import (
    DEFAULT_CLASSIFICATION,
    DEFAULT_SETTINGS,
    NO_DATA,
    CountRecord,
    OeeInputs,
    OeeSettings,
    ProductionRun,
    StateClass,
    StateInterval,
    TimeSpan,
)
from collector.oee.result import (
    Flag,
    OeeResult,
    ParetoEntry,
    Ratio,
    SixLosses,
    result_from_components,
)
from collector.oee.rollup import rollup

__all__ = [
    "DEFAULT_CLASSIFICATION",
    "DEFAULT_SETTINGS",
    "NO_DATA",
    "Break",
    "BucketResult",
    "CalendarError",
    "CalendarException",
    "CountRecord",
    "Flag",
    "OeeComponents",
    "OeeError",
    "OeeInputError",
    "OeeInputs",
    "OeeResult",
    "OeeSettings",
    "ParetoEntry",
    "PlannedTime",
    "ProductionRun",
    "Ratio",
    "Shift",
    "ShiftCalendar",
    "ShiftInstance",
    "SixLosses",
    "StateClass",
    "StateInterval",
    "TimeSpan",
    "boundaries_from_spans",
    "compute_oee",
    "compute_oee_buckets",
    "day_boundaries",
    "hour_boundaries",
    "planned_time",
    "result_from_components",
    "rollup",
    "sum_components",
]
