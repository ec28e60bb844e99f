"""OPC UA face of the PLC simulator (asyncua server with injectable faults)."""

from __future__ import annotations

from simulators.faces.opcua.errors import OpcUaFaceError
from simulators.faces.opcua.server import OpcUaFace, OpcUaSecurity, SecurityPolicy, parse_policies

__all__ = ["OpcUaFace", "OpcUaFaceError", "OpcUaSecurity", "SecurityPolicy", "parse_policies"]
