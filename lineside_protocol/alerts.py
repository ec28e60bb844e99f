"""Alert events: what the collector sends when a threshold rule is breached or clears.

One alert episode is one stretch of time in which a rule's condition held for one
subject (a line or an equipment): it opens with an ``oee.threshold_breached`` event
and closes with an ``oee.threshold_resolved`` event carrying the same ``episode_id``.
Both types are used for every rule kind (``rule_kind`` says which: OEE below a
threshold, a stop longer than a limit, equipment offline), so a receiver handles two
types, not one per rule kind.

Delivery is at least once: a receiver may get an event twice and drops repeats by
``event_id``.

Topics (under the subject's own subtree of the Unified Namespace)::

    lineside/v1/{enterprise}/{site}/{area}/{line}/{equipment}/alerts   equipment alerts
    lineside/v1/{enterprise}/{site}/{area}/{line}/alerts               line alerts

Neither matches the events subscription (``.../+/events``), so collectors never
receive their own alerts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, computed_field

from .envelope import _load_json
from .events import SCHEMA_VERSION, SchemaVersion, Timestamp, WireModel
from .ids import Uuid7Str
from .topics import TOPIC_PREFIX, Level, _check_area, check_level

ALERT_BREACHED = "oee.threshold_breached"
"""Type of the event that opens an alert episode."""
ALERT_RESOLVED = "oee.threshold_resolved"
"""Type of the event that closes it."""
ALERT_TYPES = (ALERT_BREACHED, ALERT_RESOLVED)

ALERTS_LEAF = "alerts"
LINE_ALERTS_SUBSCRIPTION = f"{TOPIC_PREFIX}/+/+/+/+/{ALERTS_LEAF}"
EQUIPMENT_ALERTS_SUBSCRIPTION = f"{TOPIC_PREFIX}/+/+/+/+/+/{ALERTS_LEAF}"
ALERTS_SUBSCRIPTIONS = (LINE_ALERTS_SUBSCRIPTION, EQUIPMENT_ALERTS_SUBSCRIPTION)
"""Topic filters that receive every alert (line and equipment alerts)."""

MAX_ALERT_BYTES = 65_536
"""Largest encoded alert event a receiver needs to accept."""

AlertType = Literal["oee.threshold_breached", "oee.threshold_resolved"]
RuleKind = Literal["oee_below", "stop_longer_than", "offline"]
Severity = Literal["info", "warning", "critical"]
AlertScope = Literal["line", "equipment"]
ResolveReason = Literal["cleared", "out_of_scope"]
ValueUnit = Literal["ratio", "s"]


class AlertSubject(WireModel):
    """What an alert is about: a line (``equipment`` null) or one equipment."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    enterprise: Level
    site: Level
    area: Annotated[Level, AfterValidator(_check_area)]
    line: Level
    equipment: Level | None = Field(None, description="null for a line alert")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        """``site/area/line[/equipment]``: the subject's id in the HTTP API."""
        levels = (self.site, self.area, self.line, self.equipment)
        return "/".join(level for level in levels if level is not None)

    @property
    def scope(self) -> AlertScope:
        return "line" if self.equipment is None else "equipment"


class AlertEvent(WireModel):
    """A rule's condition started to hold long enough (breached) or stopped (resolved)."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_id: Uuid7Str = Field(description="unique per event; receivers drop repeats by it")
    type: AlertType
    occurred_at: Timestamp = Field(description="when the collector decided the breach or resolve")
    episode_id: Uuid7Str = Field(description="the same on the breach and its resolve")
    rule: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="the rule's name in the collector configuration"
    )
    rule_kind: RuleKind
    severity: Severity
    scope: AlertScope
    subject: AlertSubject
    value: Annotated[float, Field(allow_inf_nan=False)] | None = Field(
        description="what was observed: OEE as a ratio 0..1 (oee_below), or seconds the "
        "stop or silence had lasted (stop_longer_than, offline); null when not defined"
    )
    threshold: Annotated[float, Field(allow_inf_nan=False)] = Field(
        description="the rule's limit, in the unit of value"
    )
    unit: ValueUnit
    condition_since: Timestamp = Field(description="when the condition began to hold")
    breached_at: Timestamp = Field(description="when the episode opened")
    resolved_at: Timestamp | None = Field(None, description="resolved events only")
    resolve_reason: ResolveReason | None = Field(
        None,
        description="resolved events only: cleared (the condition no longer holds) or "
        "out_of_scope (the rule no longer covers the subject)",
    )
    message: Annotated[str, Field(max_length=500)] = Field(description="one line for people")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="rule-kind specific context (state, reason code, shift window, ...)",
    )


def alert_topic(subject: AlertSubject) -> str:
    """The topic of ``subject``'s alerts: under its line's or its equipment's subtree."""
    levels = [
        check_level(subject.enterprise, "enterprise"),
        check_level(subject.site, "site"),
        check_level(subject.area, "area"),
        check_level(subject.line, "line"),
    ]
    if subject.equipment is not None:
        levels.append(check_level(subject.equipment, "equipment"))
    return "/".join([TOPIC_PREFIX, *levels, ALERTS_LEAF])


def encode_alert(event: AlertEvent) -> bytes:
    """Compact UTF-8 JSON for one alert event (the MQTT payload and the webhook body)."""
    return event.model_dump_json().encode("utf-8")


def decode_alert(data: bytes, *, max_bytes: int = MAX_ALERT_BYTES) -> AlertEvent:
    """Parse and validate one alert event (``ProtocolError`` or ``ValidationError``)."""
    return AlertEvent.model_validate(_load_json(data, max_bytes, what="alert"))


def alert_schemas() -> dict[str, dict[str, Any]]:
    """``{"AlertEvent": <JSON Schema, draft 2020-12>}``, shaped like ``export_schemas``."""
    from .schema import _finish  # here: schema.py may import this module

    return {"AlertEvent": _finish(AlertEvent.model_json_schema(), "AlertEvent")}
