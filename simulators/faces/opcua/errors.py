"""Exceptions of the OPC UA face."""

from __future__ import annotations

from simulators.errors import SimulatorError


class OpcUaFaceError(SimulatorError):
    """The OPC UA face cannot do what was asked (listen, build its nodes...)."""


class NodeBuildError(OpcUaFaceError):
    """asyncua refused a node (a bug in the tag catalogue or in this package)."""
