"""The canonical machine states: the one vocabulary of the simulator, the agent's
state maps and ``equipment.state_changed`` on the wire."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class CanonicalState(StrEnum):
    """What a machine is doing, as Lineside counts it for OEE."""

    RUNNING = "running"
    IDLE = "idle"
    STARVED = "starved"
    BLOCKED = "blocked"
    PLANNED_STOP = "planned_stop"
    UNPLANNED_STOP = "unplanned_stop"
    CHANGEOVER = "changeover"


OFFLINE = "offline"
"""Reported while the agent cannot reach the PLC of the equipment."""

# Literals for pydantic fields (schema: a plain string enum); a test keeps them equal
# to CanonicalState.
CanonicalStateName = Literal[
    "running", "idle", "starved", "blocked", "planned_stop", "unplanned_stop", "changeover"
]
EquipmentState = Literal[
    "running",
    "idle",
    "starved",
    "blocked",
    "planned_stop",
    "unplanned_stop",
    "changeover",
    "offline",
]
