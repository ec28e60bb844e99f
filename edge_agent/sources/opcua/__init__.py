"""OPC UA source: polls and subscribes PLC tags over asyncua, survives server trouble.

``OpcUaSource(connection, tags, agent_id, data_dir)`` implements
:class:`edge_agent.sources.Source`; :func:`discover` browses a server and
:func:`render_equipment_yaml` turns what it found into agent configuration.
"""

from edge_agent.sources.opcua import _speedups
from edge_agent.sources.opcua.discover import DiscoveredVariable, discover, render_equipment_yaml
from edge_agent.sources.opcua.errors import (
    LoginRejectedError,
    NamespaceUnknownError,
    NodeIdError,
    OpcUaSourceError,
    ServerTrustError,
    SessionLostError,
)
from edge_agent.sources.opcua.pki import application_uri, fingerprint
from edge_agent.sources.opcua.session import OpcUaSession, open_session
from edge_agent.sources.opcua.source import OpcUaSource

_speedups.install()

__all__ = [
    "DiscoveredVariable",
    "LoginRejectedError",
    "NamespaceUnknownError",
    "NodeIdError",
    "OpcUaSession",
    "OpcUaSource",
    "OpcUaSourceError",
    "ServerTrustError",
    "SessionLostError",
    "application_uri",
    "discover",
    "fingerprint",
    "open_session",
    "render_equipment_yaml",
]
