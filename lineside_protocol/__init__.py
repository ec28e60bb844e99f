"""The Lineside wire contract: the one module both the edge agent and the collector import.

Event models, the batch envelope and its ack, MQTT topics, the schema version and
JSON Schema export. See docs/protocol.md for the contract in prose.
"""

from __future__ import annotations

from .alerts import ALERT_BREACHED as ALERT_BREACHED
from .alerts import ALERT_RESOLVED as ALERT_RESOLVED
from .alerts import ALERTS_SUBSCRIPTIONS as ALERTS_SUBSCRIPTIONS
from .alerts import AlertEvent as AlertEvent
from .alerts import AlertSubject as AlertSubject
from .alerts import alert_schemas as alert_schemas
from .alerts import alert_topic as alert_topic
from .alerts import decode_alert as decode_alert
from .alerts import encode_alert as encode_alert
from .envelope import (
    MAX_ACK_BYTES,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    BatchAck,
    EventBatch,
    decode_ack,
    decode_batch,
    decode_event,
    encode_ack,
    encode_batch,
)
from .errors import ProtocolError, RejectReason
from .events import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    SCHEMA_VERSION,
    BufferOverflowed,
    BufferOverflowedPayload,
    EquipmentState,
    Event,
    EventBase,
    ProductionCounted,
    ProductionCountedPayload,
    ProductionEnded,
    ProductionEndedPayload,
    ProductionStarted,
    ProductionStartedPayload,
    StateChanged,
    StateChangedPayload,
    TagSampled,
    TagSampledPayload,
    utc_now,
)
from .ids import is_uuid7, new_event_id, new_event_ids, uuid7_time
from .schema import export_schemas
from .states import OFFLINE, CanonicalState
from .status import MAX_STATUS_BYTES as MAX_STATUS_BYTES
from .status import AgentPresence as AgentPresence
from .status import AgentStatusMessage as AgentStatusMessage
from .status import decode_status as decode_status
from .status import encode_status as encode_status
from .topics import (
    EVENTS_SUBSCRIPTION,
    TOPIC_PREFIX,
    EquipmentPath,
    ParsedTopic,
    agent_ack_topic,
    agent_status_topic,
    event_topic,
    parse_topic,
    shared_subscription,
)

__all__ = [
    "EVENTS_SUBSCRIPTION",
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "MAX_ACK_BYTES",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "OFFLINE",
    "SCHEMA_VERSION",
    "TOPIC_PREFIX",
    "BatchAck",
    "BufferOverflowed",
    "BufferOverflowedPayload",
    "CanonicalState",
    "EquipmentPath",
    "EquipmentState",
    "Event",
    "EventBase",
    "EventBatch",
    "ParsedTopic",
    "ProductionCounted",
    "ProductionCountedPayload",
    "ProductionEnded",
    "ProductionEndedPayload",
    "ProductionStarted",
    "ProductionStartedPayload",
    "ProtocolError",
    "RejectReason",
    "StateChanged",
    "StateChangedPayload",
    "TagSampled",
    "TagSampledPayload",
    "agent_ack_topic",
    "agent_status_topic",
    "decode_ack",
    "decode_batch",
    "decode_event",
    "encode_ack",
    "encode_batch",
    "event_topic",
    "export_schemas",
    "is_uuid7",
    "new_event_id",
    "new_event_ids",
    "parse_topic",
    "shared_subscription",
    "utc_now",
    "uuid7_time",
]
