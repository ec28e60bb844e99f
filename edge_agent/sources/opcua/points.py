"""A configured tag as the OPC UA source handles it."""

from __future__ import annotations

from dataclasses import dataclass

from asyncua import ua

from edge_agent.config.models import Tag
from edge_agent.sources.opcua.nodeids import NodeRef


@dataclass(slots=True)
class TagPoint:
    """One tag: its sample name, config, parsed address and (per session) NodeId."""

    key: str
    """Name of its samples, e.g. ``press-1.state``."""
    tag: Tag
    ref: NodeRef
    node_id: ua.NodeId | None = None
    """Resolved against the current session's NamespaceArray."""
