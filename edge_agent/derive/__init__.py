"""Samples -> domain event drafts: the edge agent's pure core (no I/O, no clock).

``Deriver(EquipmentRoles)`` takes the samples and connection changes of one equipment
and returns ``EventDraft``s; the shell stamps event ids and sequence numbers and
persists ``Deriver.snapshot()`` so baselines survive restarts. See the docstrings of
``deriver``, ``states``, ``counters``, ``orders`` and ``process_values`` for the rules.
"""

from __future__ import annotations

from edge_agent.derive.counters import counter_increment
from edge_agent.derive.deriver import SNAPSHOT_VERSION, Deriver
from edge_agent.derive.drafts import EventDraft, EventType
from edge_agent.derive.errors import DeriveError, RolesError, SnapshotError
from edge_agent.derive.roles import (
    OFFLINE,
    CanonicalState,
    CounterKind,
    CounterRole,
    EquipmentRoles,
    OrderRole,
    ProcessValueRole,
    ProductRole,
    ReasonRole,
    Role,
    StatePreset,
    StateRole,
    validate_roles,
)
from edge_agent.derive.states import CANONICAL_PRESET, PACKML_PRESET, resolve_state, state_table

__all__ = [
    "CANONICAL_PRESET",
    "OFFLINE",
    "PACKML_PRESET",
    "SNAPSHOT_VERSION",
    "CanonicalState",
    "CounterKind",
    "CounterRole",
    "DeriveError",
    "Deriver",
    "EquipmentRoles",
    "EventDraft",
    "EventType",
    "OrderRole",
    "ProcessValueRole",
    "ProductRole",
    "ReasonRole",
    "Role",
    "RolesError",
    "SnapshotError",
    "StatePreset",
    "StateRole",
    "counter_increment",
    "resolve_state",
    "state_table",
    "validate_roles",
]
