"""OPC UA face of the PLC simulator (asyncua server with injectable faults)."""

from __future__ import annotations

from simulators.faces.opcua.server import OpcUaFace, OpcUaSecurity, SecurityPolicy

__all__ = ["OpcUaFace", "OpcUaSecurity", "SecurityPolicy"]
