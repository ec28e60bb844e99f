"""The ``alerts`` section of the collector configuration (pydantic v2).

Rules are a list discriminated by ``kind``; every field is described, so the models are
the documented schema (``oee-collector schema``). Webhook URLs and header values are
``SecretStr``: chat webhooks carry their credential in the URL. Logs name a webhook by
its ``name`` only.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from lineside_protocol.states import EquipmentState

_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_LEVEL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ID_LEVELS = ("site", "area", "line", "equipment")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _scope_id(value: str) -> str:
    parts = value.split("/")
    if len(parts) > 4 or not all(_LEVEL.match(part) for part in parts):
        raise ValueError(
            f"{value!r} is not a site, area, line or equipment id: give 1 to 4 levels "
            "site/area/line/equipment as in the MQTT topics (without the enterprise), "
            "e.g. 'plant-1/pressing/line-3'"
        )
    return value


ScopeId = Annotated[str, AfterValidator(_scope_id)]
Severity = Literal["info", "warning", "critical"]

_IDS_DESCRIPTION = (
    "Which subjects the rule covers: site, area, line or equipment ids "
    "(site/area/line/equipment, as in the MQTT topics, without the enterprise); a subject "
    "is covered when its id equals one of them or lies below it. Omit: every stored {what}"
)


class _Rule(_Section):
    name: str = Field(
        pattern=_NAME_PATTERN,
        description="Unique rule name (letters, digits, '_', '-', '.'): stored with every "
        "alert, used by webhooks' rules filter and in metrics",
    )
    severity: Severity = Field(
        "warning", description="info, warning or critical: passed on to receivers as is"
    )


class OeeBelowRule(_Rule):
    """OEE of the current shift below ``threshold`` for ``for_s`` seconds in a row."""

    kind: Literal["oee_below"] = Field(description="OEE of the current shift below a threshold")
    scope: Literal["line", "equipment"] = Field(
        "line",
        description="Judge each line's OEE (its equipment's components summed) or each "
        "equipment's own",
    )
    ids: list[ScopeId] | None = Field(
        None, min_length=1, description=_IDS_DESCRIPTION.format(what="line or equipment")
    )
    threshold: float = Field(
        ge=0, le=1, allow_inf_nan=False, description="OEE as a ratio, e.g. 0.65 for 65 %"
    )
    for_s: float = Field(
        600.0,
        ge=0,
        le=86_400,
        allow_inf_nan=False,
        description="How long OEE must stay below the threshold before the alert fires "
        "(counted by the collector from the first evaluation that saw it below)",
    )
    window: Literal["current_shift"] = Field(
        "current_shift",
        description="current_shift: from the start of the shift in force (the line's "
        "calendar, docs/masterdata.md) until now; a line without a calendar uses the "
        "current day in the collector host's time zone. Outside shifts nothing fires",
    )

    @model_validator(mode="after")
    def _ids_fit_the_scope(self) -> OeeBelowRule:
        if self.scope == "line":
            deep = [i for i in self.ids or () if len(i.split("/")) == 4]
            if deep:
                raise ValueError(
                    f"rule {self.name!r}: scope line judges whole lines, but {deep[0]!r} is "
                    "an equipment id; give its line id or set scope: equipment"
                )
        return self


class StopLongerThanRule(_Rule):
    """An equipment stopped (in one of ``states``) for longer than ``min_duration_s``."""

    kind: Literal["stop_longer_than"] = Field(description="A stop longer than a limit")
    states: list[EquipmentState] = Field(
        default_factory=lambda: ["unplanned_stop"],
        min_length=1,
        description="States that count as the stop (canonical state names)",
    )
    min_duration_s: float = Field(
        300.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="The alert fires once the stop is this many seconds old (measured "
        "from the state change's event time), and resolves when the state changes",
    )
    ids: list[ScopeId] | None = Field(
        None, min_length=1, description=_IDS_DESCRIPTION.format(what="equipment")
    )


class OfflineRule(_Rule):
    """An equipment offline: in state ``offline``, or no event stored for ``for_s``."""

    kind: Literal["offline"] = Field(description="Equipment offline or silent")
    for_s: float = Field(
        60.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="Fires when the equipment has been in state offline for this long, "
        "or no event of it has been stored for this long (choose more than the agent's "
        "quietest heartbeat)",
    )
    ids: list[ScopeId] | None = Field(
        None, min_length=1, description=_IDS_DESCRIPTION.format(what="equipment")
    )


Rule = Annotated[OeeBelowRule | StopLongerThanRule | OfflineRule, Field(discriminator="kind")]


def _http_url(value: SecretStr) -> SecretStr:
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # the value itself is never repeated: it may carry a token
        raise ValueError("url must be an http:// or https:// URL with a host name")
    return value


class Webhook(_Section):
    """One HTTP receiver: every alert event is POSTed to it as JSON."""

    name: str = Field(
        pattern=_NAME_PATTERN,
        description="Unique name: shown in logs, metrics and the outbox instead of the URL",
    )
    url: Annotated[SecretStr, AfterValidator(_http_url)] = Field(
        description="http(s) URL the events are POSTed to. Never logged (chat webhook URLs "
        "carry their credential); use ${credential:NAME} or ${NAME}"
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Extra request headers, e.g. Authorization; values never logged",
    )
    timeout_s: float = Field(
        5.0, gt=0, le=60, allow_inf_nan=False, description="Timeout of one HTTP request"
    )
    retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Further tries within one delivery attempt after a connection error, "
        "a 5xx or a 429 answer (jittered exponential wait); later attempts follow with "
        "backoff from the outbox",
    )
    breaker_fail_max: int = Field(
        3, ge=1, le=100, description="Failed delivery attempts in a row that open the breaker"
    )
    breaker_reset_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="How long an open breaker skips this webhook before one trial request",
    )
    rules: list[str] | None = Field(
        None,
        min_length=1,
        description="Only events of these rules (by name); omit for every rule",
    )

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
        return value


class AlertsConfig(_Section):
    """Threshold alerts: rules, and where alert events go (docs/alerts.md)."""

    enabled: bool = Field(False, description="Evaluate the rules in this collector process")
    evaluate_every_s: float = Field(
        2.0,
        ge=0.2,
        le=5.0,
        allow_inf_nan=False,
        description="How often the rules are evaluated; at most 5 s so an alert leaves "
        "the collector within 10 s of its breach",
    )
    mqtt: bool = Field(
        True,
        description="Publish alert events (QoS 1) on the collector's broker under the "
        "subject's topic subtree (its ACL must allow writing .../alerts)",
    )
    rules: list[Rule] = Field(default_factory=list, description="The alert rules")
    webhooks: list[Webhook] = Field(
        default_factory=list, description="HTTP receivers of alert events"
    )
    redeliver_max_s: float = Field(
        300.0,
        ge=1,
        le=3600,
        allow_inf_nan=False,
        description="Longest wait between delivery attempts of an event a destination "
        "did not take (the wait doubles from 2 s up to this)",
    )
    give_up_after_s: float = Field(
        86_400.0,
        ge=60,
        allow_inf_nan=False,
        description="Stop trying to deliver an event this long after it was stored",
    )
    outbox_retention_s: float = Field(
        7 * 86_400.0,
        ge=3600,
        allow_inf_nan=False,
        description="Delete an outbox row this long after it was delivered or given up "
        "(the event itself stays in audit.alert_events)",
    )

    @model_validator(mode="after")
    def _names_are_unique_and_known(self) -> AlertsConfig:
        for what, names in (
            ("rule", [rule.name for rule in self.rules]),
            ("webhook", [hook.name for hook in self.webhooks]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"{what} name {name!r} is used twice; names must be unique")
                seen.add(name)
        rule_names = {rule.name for rule in self.rules}
        for hook in self.webhooks:
            unknown = sorted(set(hook.rules or ()) - rule_names)
            if unknown:
                raise ValueError(
                    f"webhook {hook.name!r}: rules {unknown} are not defined under rules "
                    f"(defined: {', '.join(sorted(rule_names)) or 'none'})"
                )
        return self

    def rule(self, name: str) -> OeeBelowRule | StopLongerThanRule | OfflineRule | None:
        """The rule called ``name``, or None."""
        return next((rule for rule in self.rules if rule.name == name), None)
