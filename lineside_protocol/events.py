"""Event models: what an edge agent observed at one piece of equipment.

Every event shares the envelope fields of :class:`EventBase`; ``type`` selects the
``payload`` model. Receivers ignore fields they do not know (``extra="ignore"``) so that
a newer sender can add optional fields without a new schema version; senders must not
rely on a receiver understanding such fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .ids import Uuid7Str
from .states import EquipmentState
from .topics import AgentId, EquipmentPath

SCHEMA_VERSION = 1
"""The major version of the wire contract; a receiver rejects any other value."""


def utc_now() -> datetime:
    """The current time, timezone-aware UTC, truncated to the wire precision (ms)."""
    return _to_wire_precision(datetime.now(UTC))


def _to_wire_precision(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def _require_text_or_datetime(value: Any) -> Any:
    # pydantic would also take numbers as Unix seconds; the wire allows ISO 8601 only
    if isinstance(value, str | datetime):
        return value
    raise PydanticCustomError(
        "timestamp_type",
        "expected an ISO 8601 string with a UTC offset, e.g. '2026-01-05T08:10:00.000Z'",
    )


def _format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_require_text_or_datetime),
    AfterValidator(_to_wire_precision),  # so a model equals the decoding of its encoding
    PlainSerializer(_format_timestamp, return_type=str, when_used="json"),
]
"""A pydantic field type: timezone-aware; stored as UTC with millisecond precision."""

NonNegativeCount = Annotated[int, Field(ge=0, strict=True)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

TagQuality = Literal["good", "uncertain", "bad"]
EndReason = Literal["order_changed", "product_changed", "agent_stopped"]
OverflowReason = Literal["max_bytes", "max_age"]


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are ignored, never an error."""

    model_config = ConfigDict(extra="ignore")


def _check_schema_version(value: int) -> int:
    if value != SCHEMA_VERSION:
        raise PydanticCustomError(
            "unsupported_schema_version",
            "schema_version {version} is not supported by this receiver (it understands "
            "{supported}); upgrade the receiver or publish schema_version {supported}",
            {"version": value, "supported": SCHEMA_VERSION},
        )
    return value


SchemaVersion = Annotated[
    int,
    Field(strict=True, json_schema_extra={"const": SCHEMA_VERSION}),
    AfterValidator(_check_schema_version),
]
"""A pydantic field type: the schema version; anything but SCHEMA_VERSION is refused."""


# ---- payloads ---------------------------------------------------------------------


class StateChangedPayload(WireModel):
    """The equipment entered ``state`` (canonical state, derived by the agent)."""

    state: EquipmentState
    previous_state: EquipmentState | None = None
    raw_value: Annotated[int, Field(strict=True)] | FiniteFloat | str | None = None
    reason_code: NonNegativeCount | None = None


class ProductionCountedPayload(WireModel):
    """Parts counted since the previous sample (deltas, not absolute counter values)."""

    good: NonNegativeCount
    scrap: NonNegativeCount
    total: NonNegativeCount
    product_id: str | None = None
    order_id: str | None = None
    counter_reset: Annotated[bool, Field(strict=True)] = False
    interval_start: Timestamp | None = None

    @model_validator(mode="after")
    def _total_is_good_plus_scrap(self) -> ProductionCountedPayload:
        if self.total != self.good + self.scrap:
            raise PydanticCustomError(
                "count_mismatch",
                "total {total} must equal good + scrap ({good} + {scrap} = {expected})",
                {
                    "total": self.total,
                    "good": self.good,
                    "scrap": self.scrap,
                    "expected": self.good + self.scrap,
                },
            )
        return self


class ProductionStartedPayload(WireModel):
    """An order and/or product started on the equipment."""

    order_id: str | None = None
    product_id: str | None = None
    ideal_cycle_time_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None


class ProductionEndedPayload(WireModel):
    """The current order and/or product ended."""

    order_id: str | None = None
    product_id: str | None = None
    reason: EndReason


class TagSampledPayload(WireModel):
    """A raw tag value as read from the PLC (for trends and diagnostics)."""

    tag: Annotated[str, Field(min_length=1, max_length=128)]
    value: (
        Annotated[bool, Field(strict=True)] | Annotated[int, Field(strict=True)] | FiniteFloat | str
    )
    unit: str | None = None
    quality: TagQuality
    status: str


class BufferOverflowedPayload(WireModel):
    """The agent's buffer dropped its oldest events of this equipment (a bound was hit).

    ``first_*``/``last_*`` describe the oldest and newest dropped event. ``dropped_events``
    can be less than ``last_seq - first_seq + 1``: events in between may have been
    delivered before the drop.
    """

    dropped_events: Annotated[int, Field(ge=1, strict=True)]
    first_seq: NonNegativeCount
    last_seq: NonNegativeCount
    first_event_time: Timestamp
    last_event_time: Timestamp
    reason: OverflowReason


# ---- events -----------------------------------------------------------------------


def _type_is_required_on_the_wire(schema: dict[str, Any]) -> None:
    # ``type`` and ``schema_version`` have Python defaults for convenience, but every
    # message must carry them (the decoders check this)
    required = schema.setdefault("required", [])
    for name in ("schema_version", "type"):
        if name not in required:
            required.insert(0, name)


class EventBase(WireModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_type_is_required_on_the_wire)

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_id: Uuid7Str
    agent_id: AgentId
    equipment: EquipmentPath
    seq: NonNegativeCount
    event_time: Timestamp
    received_time: Timestamp
    correlation_id: str | None = None
    causation_id: str | None = None
    historical: Annotated[bool, Field(strict=True)] = False


class StateChanged(EventBase):
    """``equipment.state_changed``: the machine state changed."""

    type: Literal["equipment.state_changed"] = "equipment.state_changed"
    payload: StateChangedPayload


class ProductionCounted(EventBase):
    """``production.counted``: good and scrap parts counted in an interval."""

    type: Literal["production.counted"] = "production.counted"
    payload: ProductionCountedPayload


class ProductionStarted(EventBase):
    """``production.started``: an order or product started."""

    type: Literal["production.started"] = "production.started"
    payload: ProductionStartedPayload


class ProductionEnded(EventBase):
    """``production.ended``: an order or product ended."""

    type: Literal["production.ended"] = "production.ended"
    payload: ProductionEndedPayload


class TagSampled(EventBase):
    """``tag.sampled``: a raw tag sample."""

    type: Literal["tag.sampled"] = "tag.sampled"
    payload: TagSampledPayload


class BufferOverflowed(EventBase):
    """``buffer.overflowed``: the agent dropped undelivered events to stay within its bounds."""

    type: Literal["buffer.overflowed"] = "buffer.overflowed"
    payload: BufferOverflowedPayload


Event = Annotated[
    StateChanged
    | ProductionCounted
    | ProductionStarted
    | ProductionEnded
    | TagSampled
    | BufferOverflowed,
    Field(discriminator="type"),
]
"""Any event; ``type`` selects the model."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_TYPES: dict[str, type[EventBase]] = {
    "equipment.state_changed": StateChanged,
    "production.counted": ProductionCounted,
    "production.started": ProductionStarted,
    "production.ended": ProductionEnded,
    "tag.sampled": TagSampled,
    "buffer.overflowed": BufferOverflowed,
}
