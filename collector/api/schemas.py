"""Response models: they document the API (OpenAPI at /docs); answers are rendered by
``collector.api.render`` and match them."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TimesS(BaseModel):
    """ISO 22400 time elements, in seconds."""

    all_time: float
    planned_time: float
    planned_downtime_breaks: float
    planned_downtime_states: float
    unscheduled_running: float
    planned_busy_time: float
    actual_production_time: float
    running: float
    micro_stops: float
    performance_states: float
    downtime: float
    setup: float
    offline: float
    no_data: float
    ideal_production: float


class Counts(BaseModel):
    good: int
    scrap: int
    total: int
    startup_scrap: int
    without_ideal_cycle_time: int


class SixLossesS(BaseModel):
    breakdowns_s: float
    setup_changeover_s: float
    small_stops_s: float
    reduced_speed_s: float
    startup_rejects_s: float
    production_rejects_s: float


class ParetoRow(BaseModel):
    state: str
    reason_code: int | None
    time_s: float
    share: float
    cumulative_share: float


class OeeFigures(BaseModel):
    """A, P, Q, OEE (0..1, unrounded; null with a reason when undefined), times, counts."""

    availability: float | None
    performance: float | None = Field(description="may exceed 1 (flagged, never capped)")
    quality: float | None
    oee: float | None
    utilisation: float | None
    teep: float | None
    reasons: dict[str, str] = Field(description="why a ratio is null")
    times_s: TimesS
    downtime_by_state_s: dict[str, float]
    counts: Counts
    six_losses_s: SixLossesS
    pareto: list[ParetoRow] | None = Field(None, description="in the total only")
    flags: list[str]


class OeeBucket(OeeFigures):
    start: str
    end: str
    shift: str | None


class EquipmentFigures(OeeFigures):
    id: str


class OeeAnswer(BaseModel):
    """``GET /api/v1/oee``."""

    scope: str
    id: str
    start: str
    end: str = Field(description="the window's end as computed: the requested end or now")
    requested_end: str
    as_of: str
    bucket: str
    timezone: str
    equipment: list[str]
    total: OeeFigures
    buckets: list[OeeBucket]
    by_equipment: list[EquipmentFigures]


class EquipmentNode(BaseModel):
    id: str
    enterprise: str
    site: str
    area: str
    line: str
    equipment: str


class LineNode(BaseModel):
    id: str
    equipment: list[EquipmentNode]


class AreaNode(BaseModel):
    id: str
    lines: list[LineNode]


class SiteNode(BaseModel):
    id: str
    areas: list[AreaNode]


class EquipmentTree(BaseModel):
    """``GET /api/v1/equipment``: the hierarchy of the sites the caller may see."""

    sites: list[SiteNode]


class StateSpanOut(BaseModel):
    start: str
    end: str
    state: str
    reason_code: int | None
    open: bool


class Timeline(BaseModel):
    id: str
    start: str
    end: str
    states: list[StateSpanOut]
    truncated: bool


class CurrentStateOut(BaseModel):
    id: str
    state: str | None
    since: str | None
    reason_code: int | None
    last_seen: str


class CurrentStates(BaseModel):
    equipment: list[CurrentStateOut]


class Sample(BaseModel):
    time: str
    value: float | str | bool | None
    unit: str | None
    quality: str


class History(BaseModel):
    id: str
    tag: str
    start: str
    end: str
    samples: list[Sample]
    truncated: bool


class Pareto(BaseModel):
    scope: str
    id: str
    start: str
    end: str
    total_stop_time_s: float
    reasons: list[ParetoRow]
