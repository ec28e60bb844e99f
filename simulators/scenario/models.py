"""Validated scenario configuration (pydantic v2).

A scenario names machines (where they sit in the ISA-95 hierarchy, what they make,
how their PLC encodes things) and how each behaves over time: a scripted timeline or
random mode with rates. Unknown keys are errors so that typos never pass silently.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simulators.model.counters import CounterWidth
from simulators.model.states import MachineState, StateEncoding
from simulators.scenario.durations import DurationS
from simulators.scenario.timeline import TimelineEntry, timeline_overlaps

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
Name = Annotated[str, Field(pattern=_NAME, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_Strict):
    """ISA-95 equipment hierarchy above the machine."""

    enterprise: Name = "lineside"
    site: Name
    area: Name
    line: Name


class Product(_Strict):
    id: Annotated[
        str,
        Field(
            pattern=_NAME,
            max_length=32,
            description="Fits the 32-character Modbus string registers",
        ),
    ]
    ideal_cycle_time_s: float = Field(gt=0, description="Ideal (nameplate) time per part")
    cycle_time_factor: float = Field(
        1.0, ge=1.0, description="Mean actual cycle time as a multiple of the ideal one"
    )
    jitter: float = Field(
        0.05, ge=0, le=1, description="Each cycle is up to this fraction slower, uniformly"
    )
    scrap_rate: float | None = Field(None, ge=0, le=1, description="Overrides the machine's")


class ByteOrder(StrEnum):
    BIG = "big"
    LITTLE = "little"


class ModbusFace(_Strict):
    unit_id: int = Field(1, ge=1, le=247)
    byte_order: ByteOrder = ByteOrder.BIG
    word_order: ByteOrder = ByteOrder.BIG


class ValueType(StrEnum):
    FLOAT32 = "float32"
    FLOAT64 = "float64"


class ProcessValue(_Strict):
    """An analog value: base + running offset + sine wave + per-second noise."""

    name: Name
    unit: str = ""
    type: ValueType = ValueType.FLOAT32
    source: Literal["wave", "rate"] = Field(
        "wave", description="'rate' is the actual production rate in parts/min"
    )
    base: float = 0.0
    running_offset: float = 0.0
    amplitude: float = 0.0
    period_s: float = Field(600.0, gt=0)
    noise: float = Field(0.0, ge=0)


class AnalogChannels(_Strict):
    """Many generated process values (``ai_000``...) for load scenarios."""

    count: int = Field(ge=1, le=2000)
    type: ValueType = ValueType.FLOAT32
    noise: float = Field(1.0, gt=0, description="Must be > 0 so every value changes each second")


class RandomStop(_Strict):
    state: MachineState
    mean_interval: DurationS = Field(gt=0, description="Mean running time between these stops")
    mean_duration: DurationS = Field(gt=0)
    reasons: list[int] = Field(default_factory=lambda: [0], min_length=1)

    @field_validator("state")
    @classmethod
    def _not_running(cls, value: MachineState) -> MachineState:
        if value in (MachineState.RUNNING, MachineState.CHANGEOVER):
            raise ValueError("random stops are non-running states other than changeover")
        return value

    @field_validator("reasons")
    @classmethod
    def _reason_range(cls, value: list[int]) -> list[int]:
        for reason in value:
            if not 0 <= reason <= 65535:
                raise ValueError(f"reason {reason} does not fit a uint16 register (0-65535)")
        return value


class RandomOrders(_Strict):
    mean_interval: DurationS = Field(gt=0)
    changeover: DurationS = Field(600.0, ge=0)
    changeover_reason: int = Field(0, ge=0, le=65535)


class RandomBehaviour(_Strict):
    stops: list[RandomStop] = Field(default_factory=list)
    orders: RandomOrders | None = None


class Replicas(_Strict):
    """Stamp out ``count`` copies of a machine (load scenarios)."""

    count: int = Field(ge=1, le=247)
    name: str = Field(description="Python format with {n} (1-based), e.g. 'cell-{n:03d}'")
    spread_value_offsets: bool = Field(
        False,
        description="Give replica n the value_offset_s (n-1)/count: the replicas' process "
        "values then change spread over each second instead of all at the same instant",
    )

    @field_validator("name")
    @classmethod
    def _has_n(cls, value: str) -> str:
        try:
            rendered = value.format(n=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"cannot format {value!r} with n: {exc}") from None
        if rendered == value.format(n=2):
            raise ValueError("the name pattern must contain {n} so replicas differ")
        if not re.match(_NAME, rendered):
            raise ValueError(f"rendered name {rendered!r} must match {_NAME}")
        return value

    @model_validator(mode="after")
    def _fits(self) -> Replicas:
        longest = max((self.name.format(n=n) for n in (1, self.count)), key=len)
        if len(longest) > 27:
            raise ValueError(f"rendered name {longest!r} is longer than 27 characters")
        return self


class Machine(_Strict):
    name: Annotated[
        str,
        Field(
            pattern=_NAME,
            max_length=27,
            description="27 characters so '<name>-0001' order ids fit 32",
        ),
    ]
    location: Location
    description: str = ""
    counter_width: CounterWidth = CounterWidth.UINT32
    state_encoding: StateEncoding = StateEncoding.CANONICAL
    scrap_rate: float = Field(0.02, ge=0, le=1)
    reset_counters_on_order_change: bool = True
    products: list[Product] = Field(min_length=1)
    process_values: list[ProcessValue] = Field(default_factory=list)
    analog_channels: AnalogChannels | None = None
    value_offset_s: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Where in each second the process values change (s after the whole "
        "second); machines of a real plant do not all change at the same instant",
    )
    modbus: ModbusFace = ModbusFace()
    timeline: list[TimelineEntry] | None = None
    random: RandomBehaviour | None = None
    replicas: Replicas | None = None

    @model_validator(mode="after")
    def _check(self) -> Machine:
        if (self.timeline is None) == (self.random is None):
            raise ValueError("give exactly one of 'timeline' (scripted) or 'random'")
        ids = [p.id for p in self.products]
        if len(set(ids)) != len(ids):
            raise ValueError(f"product ids must be unique, got {ids}")
        names = [pv.name for pv in self.process_values]
        if len(set(names)) != len(names):
            raise ValueError(f"process value names must be unique, got {names}")
        overlaps = timeline_overlaps(self.timeline or [])
        if overlaps:
            raise ValueError("; ".join(overlaps))
        for entry in self.timeline or []:
            if entry.product is not None and entry.product not in ids:
                raise ValueError(
                    f"timeline at {entry.at}: product {entry.product!r} is not one of {ids}"
                )
        return self


class OpcUaOptions(_Strict):
    """OPC UA face settings that belong to a scenario (endpoints and users: CLI options)."""

    user_certificates: list[Path] = Field(
        default_factory=list,
        description="X.509 user certificates (PEM or DER) allowed to log in; relative paths "
        "are relative to the scenario file",
    )


class Scenario(_Strict):
    scenario: Name = Field(description="Scenario name, used by 'plc-sim run NAME'")
    description: str = ""
    timezone: str = Field("UTC", description="IANA zone for timeline clock times")
    seed: int = 0
    start: datetime | None = Field(
        None, description="Simulated start; default: today at the first timeline time"
    )
    namespace_uri: str = "urn:lineside:simulator"
    opcua: OpcUaOptions = OpcUaOptions()
    machines: list[Machine] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. 'Europe/Berlin')") from None
        return value

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2026-11-28T06:00:00+01:00")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Scenario:
        names = [m.name for m in expand_machines(self)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"machine names must be unique; repeated: {', '.join(dupes)}")
        units = [m.modbus.unit_id for m in expand_machines(self)]
        if max(units) > 247:
            raise ValueError(
                f"replicas push modbus.unit_id up to {max(units)}; Modbus unit ids end at 247"
            )
        dup_units = sorted({u for u in units if units.count(u) > 1})
        if dup_units:
            raise ValueError(
                "each machine needs its own modbus.unit_id (all share one Modbus server); "
                f"repeated: {dup_units}"
            )
        return self


def expand_machines(scenario: Scenario) -> list[Machine]:
    """Machines with replicas stamped out (names from the pattern, unit ids counting up)."""
    out: list[Machine] = []
    for machine in scenario.machines:
        if machine.replicas is None:
            out.append(machine)
            continue
        for n in range(1, machine.replicas.count + 1):
            unit = machine.modbus.unit_id + n - 1
            out.append(
                machine.model_copy(
                    update={
                        "name": machine.replicas.name.format(n=n),
                        "replicas": None,
                        "modbus": machine.modbus.model_copy(update={"unit_id": unit}),
                        **(
                            {"value_offset_s": round((n - 1) / machine.replicas.count, 3)}
                            if machine.replicas.spread_value_offsets
                            else {}
                        ),
                    }
                )
            )
    return out
