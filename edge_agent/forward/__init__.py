"""MQTT forwarder: buffered events -> batches on the broker; confirmations -> buffer deletes.

``Forwarder(config, buffer, agent_id, location, version, config_hash)`` reads the
store-and-forward buffer in capture order, publishes one batch per equipment (QoS 1),
and deletes events only when the collector confirms them (or the broker, in
``ack_mode: broker``). See docs/protocol.md for the wire contract.
"""

from edge_agent.forward.buffer_api import BufferedEventLike, EventSource
from edge_agent.forward.config import BatchConfig, MqttConfig, ReconnectConfig, TlsConfig
from edge_agent.forward.errors import BrokerConnectError, BrokerRefusedError, ForwardError
from edge_agent.forward.forwarder import Forwarder

__all__ = [
    "BatchConfig",
    "BrokerConnectError",
    "BrokerRefusedError",
    "BufferedEventLike",
    "EventSource",
    "ForwardError",
    "Forwarder",
    "MqttConfig",
    "ReconnectConfig",
    "TlsConfig",
]
