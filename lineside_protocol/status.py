"""The agent status message: retained on the agent's status topic, "offline" as last will.

An agent publishes :class:`AgentStatusMessage` with ``status="online"`` (retained, QoS 1)
each time it connects to the broker, and registers the same message with
``status="offline"`` as its MQTT last will, so a subscriber to
``lineside/v1/{enterprise}/{site}/_agents/{agent_id}/status`` always sees whether the
agent is connected, which version runs and which configuration it loaded.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from .envelope import _load_json
from .events import SCHEMA_VERSION, SchemaVersion, Timestamp, WireModel
from .topics import AgentId

MAX_STATUS_BYTES = 4096
"""Largest status message a receiver accepts."""

AgentPresence = Literal["online", "offline"]


class AgentStatusMessage(WireModel):
    """Whether an agent is connected to the broker, with its version and config hash."""

    model_config = ConfigDict(extra="ignore")

    schema_version: SchemaVersion = SCHEMA_VERSION
    agent_id: AgentId
    status: AgentPresence = Field(
        description="online: published after each connect; offline: the last will, sent by "
        "the broker when the agent vanishes, or published by the agent when it stops"
    )
    version: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="version of the agent software"
    )
    config_hash: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        description="hash of the loaded configuration, to spot agents running a stale config"
    )
    at: Timestamp = Field(
        description="when the message was made; for the last will that is when the agent "
        "connected (the broker sends the will unchanged)"
    )


def encode_status(message: AgentStatusMessage) -> bytes:
    """Compact UTF-8 JSON for one status message."""
    return message.model_dump_json().encode("utf-8")


def decode_status(data: bytes, *, max_bytes: int = MAX_STATUS_BYTES) -> AgentStatusMessage:
    """Parse and validate one status message.

    Raises ``ProtocolError`` when the data is not readable JSON (too large, not UTF-8,
    not JSON) and ``pydantic.ValidationError`` when a field is wrong; both are
    ``ValueError``. Status messages are informational: nothing dead-letters them, so they
    have no reason code of their own.
    """
    document = _load_json(data, max_bytes, what="status")
    return AgentStatusMessage.model_validate(document)
