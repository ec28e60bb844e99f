"""Configuration -> the deriver's roles: which tag means what, per equipment."""

from __future__ import annotations

from edge_agent.config.models import (
    COUNTER_ROLES,
    AgentConfig,
    Equipment,
    ModbusAddress,
    ModbusType,
    Role,
    Tag,
)
from edge_agent.derive import (
    CounterKind,
    CounterRole,
    EquipmentRoles,
    OrderRole,
    ProcessValueRole,
    ProductRole,
    ReasonRole,
    StateRole,
)
from edge_agent.derive import Role as DeriveRole

_COUNTER_KINDS = {
    Role.GOOD_COUNT: CounterKind.GOOD,
    Role.SCRAP_COUNT: CounterKind.SCRAP,
    Role.TOTAL_COUNT: CounterKind.TOTAL,
}
_MODBUS_WIDTH = {
    ModbusType.UINT16: 16,
    ModbusType.INT16: 16,
    ModbusType.UINT32: 32,
    ModbusType.INT32: 32,
    ModbusType.UINT64: 64,
    ModbusType.INT64: 64,
}


def full_tag_id(equipment: Equipment, tag: Tag) -> str:
    """Tag ids are unique per agent as ``equipment.tag``."""
    return f"{equipment.id}.{tag.id}"


def tag_connection(equipment: Equipment, tag: Tag) -> str:
    connection = tag.connection or equipment.connection
    assert connection is not None  # the loader rejects tags without one
    return connection


def equipment_roles(config: AgentConfig) -> list[EquipmentRoles]:
    """One EquipmentRoles per configured equipment, tags keyed by full tag id."""
    out = []
    for equipment in config.equipment:
        tags: dict[str, DeriveRole] = {}
        connections: list[str] = []
        for tag in equipment.tags:
            tags[full_tag_id(equipment, tag)] = role_of(tag)
            connection = tag_connection(equipment, tag)
            if connection not in connections:
                connections.append(connection)
        out.append(EquipmentRoles(equipment.id, tuple(connections), tags))
    return out


def tags_by_connection(config: AgentConfig) -> dict[str, list[tuple[str, Tag]]]:
    """Connection id -> [(full tag id, tag)] in configuration order."""
    out: dict[str, list[tuple[str, Tag]]] = {c.id: [] for c in config.connections}
    for equipment in config.equipment:
        for tag in equipment.tags:
            out[tag_connection(equipment, tag)].append((full_tag_id(equipment, tag), tag))
    return out


def role_of(tag: Tag) -> DeriveRole:
    if tag.role is Role.STATE:
        state_map = tag.state_map
        if state_map is None:
            return StateRole()
        return StateRole(
            preset=state_map.preset, mapping=dict(state_map.map), unmapped_state=state_map.unmapped
        )
    if tag.role in COUNTER_ROLES:
        return CounterRole(kind=_COUNTER_KINDS[tag.role], width_bits=counter_width(tag))
    if tag.role is Role.REASON:
        return ReasonRole()
    if tag.role is Role.ORDER:
        return OrderRole()
    if tag.role is Role.PRODUCT:
        return ProductRole(ideal_cycle_time_s=dict(tag.ideal_cycle_times_s or {}) or None)
    deadband = tag.deadband
    return ProcessValueRole(
        unit=tag.unit,
        deadband_abs=deadband.value if deadband and deadband.type == "absolute" else None,
        deadband_pct=deadband.value if deadband and deadband.type == "percent" else None,
        max_interval_s=tag.max_interval_s,
    )


def counter_width(tag: Tag) -> int:
    """Configured width, else the Modbus register type's width, else 32."""
    if tag.counter_width is not None:
        return tag.counter_width
    if isinstance(tag.address, ModbusAddress):
        return _MODBUS_WIDTH.get(tag.address.type, 32)
    return 32
