"""MQTT topics of the Lineside Unified Namespace (ISA-95 levels under ``lineside/v1``).

::

    lineside/v1/{enterprise}/{site}/{area}/{line}/{equipment}/events   event batches
    lineside/v1/{enterprise}/{site}/_agents/{agent_id}/status          agent status
    lineside/v1/{enterprise}/{site}/_agents/{agent_id}/acks            batch acks

Every level is checked, so a topic can never be built with '/', '+', '#', spaces or an
empty level: a bad name fails where it is configured, not as a silently mis-routed message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, WithJsonSchema

from .errors import ProtocolError, RejectReason

TOPIC_PREFIX = "lineside/v1"
AGENTS_LEVEL = "_agents"
EVENTS_SUBSCRIPTION = f"{TOPIC_PREFIX}/+/+/+/+/+/events"
ACKS_SUBSCRIPTION = f"{TOPIC_PREFIX}/+/+/{AGENTS_LEVEL}/+/acks"
STATUS_SUBSCRIPTION = f"{TOPIC_PREFIX}/+/+/{AGENTS_LEVEL}/+/status"

LEVEL_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
AGENT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
_LEVEL_RE = re.compile(LEVEL_PATTERN)
_AGENT_ID_RE = re.compile(AGENT_ID_PATTERN)

_PATH_NAMES = ("enterprise", "site", "area", "line", "equipment")

TopicKind = Literal["events", "status", "acks"]


def check_level(value: str, what: str) -> str:
    """Return ``value`` if it is a valid topic level, else raise ``ProtocolError``."""
    if not isinstance(value, str) or not _LEVEL_RE.match(value):
        raise ProtocolError(
            RejectReason.BAD_TOPIC,
            f"{what} {value!r} is not a valid topic level: use 1-64 characters from "
            "A-Z a-z 0-9 '_' '-' (no '/', '+', '#', spaces or dots)",
        )
    return value


def check_agent_id(value: str) -> str:
    """Return ``value`` if it is a valid agent id, else raise ``ProtocolError``."""
    if not isinstance(value, str) or not _AGENT_ID_RE.match(value):
        raise ProtocolError(
            RejectReason.BAD_TOPIC,
            f"agent_id {value!r} is not valid: use 1-64 characters from "
            "A-Z a-z 0-9 '.' '_' '-' (no '/', '+', '#' or spaces)",
        )
    return value


def _check_area(value: str) -> str:
    if value == AGENTS_LEVEL:
        raise ValueError(f"area {AGENTS_LEVEL!r} is reserved for agent status and acks topics")
    return value


def _level_field(value: str, info: ValidationInfo) -> str:
    return check_level(value, info.field_name or "level")


def _agent_id_field(value: str) -> str:
    return check_agent_id(value)


Level = Annotated[
    str,
    AfterValidator(_level_field),
    WithJsonSchema({"type": "string", "pattern": LEVEL_PATTERN}),
]
"""A pydantic field type: one MQTT topic level (ISA-95 name)."""

AgentId = Annotated[
    str,
    AfterValidator(_agent_id_field),
    WithJsonSchema({"type": "string", "pattern": AGENT_ID_PATTERN}),
]
"""A pydantic field type: an agent id, usable as a topic level."""


class EquipmentPath(BaseModel):
    """Where an event happened, as ISA-95 levels; each level is one MQTT topic level."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    enterprise: Level
    site: Level
    area: Annotated[Level, AfterValidator(_check_area)]
    line: Level
    equipment: Level

    def levels(self) -> tuple[str, str, str, str, str]:
        """The five levels, outermost first."""
        return (self.enterprise, self.site, self.area, self.line, self.equipment)

    def __str__(self) -> str:
        return "/".join(self.levels())


def event_topic(path: EquipmentPath) -> str:
    """The topic an agent publishes the event batches of one equipment to."""
    levels = [
        check_level(level, name) for name, level in zip(_PATH_NAMES, path.levels(), strict=True)
    ]
    return "/".join([TOPIC_PREFIX, *levels, "events"])


def agent_status_topic(enterprise: str, site: str, agent_id: str) -> str:
    """The topic an agent publishes its status (and MQTT last will) to."""
    return _agent_topic(enterprise, site, agent_id, "status")


def agent_ack_topic(enterprise: str, site: str, agent_id: str) -> str:
    """The topic the collector publishes batch acks for one agent to."""
    return _agent_topic(enterprise, site, agent_id, "acks")


def _agent_topic(enterprise: str, site: str, agent_id: str, leaf: str) -> str:
    check_level(enterprise, "enterprise")
    check_level(site, "site")
    check_agent_id(agent_id)
    return f"{TOPIC_PREFIX}/{enterprise}/{site}/{AGENTS_LEVEL}/{agent_id}/{leaf}"


def shared_subscription(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription: the broker spreads messages over the group."""
    check_level(group, "share group")
    if not topic_filter or topic_filter.startswith("$share/"):
        raise ProtocolError(
            RejectReason.BAD_TOPIC, f"topic filter {topic_filter!r} must be a plain filter"
        )
    return f"$share/{group}/{topic_filter}"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A Lineside topic taken apart: ``path`` for events, ``agent_id`` for status and acks."""

    kind: TopicKind
    enterprise: str
    site: str
    path: EquipmentPath | None = None
    agent_id: str | None = None


def parse_topic(topic: str) -> ParsedTopic:
    """Take a received topic apart, or raise ``ProtocolError`` with reason ``bad_topic``."""
    parts = topic.split("/")
    if parts[:2] != TOPIC_PREFIX.split("/"):
        raise _bad_topic(topic, f"does not start with {TOPIC_PREFIX + '/'!r}")
    rest = parts[2:]
    try:
        if len(rest) == 6 and rest[5] == "events" and rest[2] != AGENTS_LEVEL:
            levels = dict(zip(_PATH_NAMES, rest[:5], strict=True))
            for name, level in levels.items():
                check_level(level, name)
            return ParsedTopic("events", rest[0], rest[1], path=EquipmentPath(**levels))
        if len(rest) == 5 and rest[2] == AGENTS_LEVEL and rest[4] in ("status", "acks"):
            check_level(rest[0], "enterprise")
            check_level(rest[1], "site")
            kind: TopicKind = "status" if rest[4] == "status" else "acks"
            return ParsedTopic(kind, rest[0], rest[1], agent_id=check_agent_id(rest[3]))
    except ProtocolError as error:
        raise _bad_topic(topic, error.message) from None
    raise _bad_topic(
        topic,
        f"is neither '{TOPIC_PREFIX}/<enterprise>/<site>/<area>/<line>/<equipment>/events' "
        f"nor '{TOPIC_PREFIX}/<enterprise>/<site>/{AGENTS_LEVEL}/<agent_id>/status|acks'",
    )


def _bad_topic(topic: str, problem: str) -> ProtocolError:
    return ProtocolError(RejectReason.BAD_TOPIC, f"topic {topic!r}: {problem}")
