"""Build the right source for a configured connection."""

from __future__ import annotations

from edge_agent.config.models import AgentConfig, Connection, Tag
from edge_agent.sources import Source


def build_source(
    config: AgentConfig, connection: Connection, tags: list[tuple[str, Tag]]
) -> Source:
    """An OPC UA or Modbus source reading ``tags`` (full ids) over ``connection``."""
    if connection.opcua is not None:
        from edge_agent.sources.opcua import OpcUaSource  # deferred: asyncua is heavy

        return OpcUaSource(connection, tags, config.agent.id, config.agent.data_dir)
    from edge_agent.sources.modbus import ModbusSource

    return ModbusSource(connection, tags)
