"""Browse an OPC UA server and render what it holds as agent configuration.

``discover`` walks the hierarchy below a start node (default: Objects) to a depth,
keeps the variables whose dotted browse path matches an optional glob, and
``render_equipment_yaml`` renders them as ``equipment:`` entries: one per machine-like
object (the nearest ancestor that is not a folder), tags with portable ``nsu=``
addresses, roles guessed from the names and kept consistent with the configuration
rules (one tag per single role, two counters or none), ready to edit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from asyncua import ua

from edge_agent.config.models import Connection
from edge_agent.sources.opcua.errors import OpcUaSourceError
from edge_agent.sources.opcua.nodeids import format_node_id, parse_node_id
from edge_agent.sources.opcua.session import OpcUaSession, open_session

_TYPE_NAMES = {
    getattr(ua.ObjectIds, name): name
    for name in [
        "Boolean",
        "SByte",
        "Byte",
        "Int16",
        "UInt16",
        "Int32",
        "UInt32",
        "Int64",
        "UInt64",
        "Float",
        "Double",
        "String",
        "DateTime",
        "ByteString",
        "LocalizedText",
    ]
}
_COUNTER_WIDTHS = {"Int16": 16, "UInt16": 16, "Int32": 32, "UInt32": 32, "Int64": 64, "UInt64": 64}
_ROLE_NAMES = {
    "state": {"state", "machinestate", "statecode"},
    "reason": {"reason", "reasoncode", "stopreason"},
    "order": {"order", "ordernumber", "workorder"},
    "product": {"product", "productid", "article"},
    "good_count": {"goodcount", "good", "goodparts"},
    "scrap_count": {"scrapcount", "scrap", "rejectcount", "badcount"},
    "total_count": {"totalcount", "total", "partcount"},
}
_COUNTERS = ("total_count", "good_count", "scrap_count")  # kept in this order of preference


@dataclass(frozen=True, slots=True)
class DiscoveredVariable:
    """A variable found by :func:`discover`."""

    path: tuple[str, ...]
    """Browse names from the start node down to the variable."""
    address: str
    """Portable node id (``nsu=<URI>;...`` outside namespace 0)."""
    data_type: str
    equipment: str
    """Browse name of the nearest ancestor object that is not a folder."""


async def discover(
    connection: Connection,
    agent_id: str,
    data_dir: Path,
    *,
    depth: int = 6,
    pattern: str | None = None,
    start: str = "i=85",
) -> list[DiscoveredVariable]:
    """Connect as the agent would (security, login) and browse (see :func:`browse_variables`)."""
    if connection.opcua is None:
        raise OpcUaSourceError(f"connection {connection.id!r} is not an OPC UA connection")
    session = await open_session(connection.id, connection.opcua, agent_id, data_dir)
    try:
        return await browse_variables(session, depth=depth, pattern=pattern, start=start)
    finally:
        await session.close(graceful=True)


async def browse_variables(
    session: OpcUaSession, *, depth: int = 6, pattern: str | None = None, start: str = "i=85"
) -> list[DiscoveredVariable]:
    """Variables up to ``depth`` levels below ``start`` whose dotted path matches ``pattern``.

    Namespace 0 (the server's own objects) and properties are skipped.
    """
    start_id = parse_node_id(start).resolve(session.namespaces)
    found: list[tuple[tuple[str, ...], ua.NodeId, str]] = []

    async def walk(node_id: ua.NodeId, path: tuple[str, ...], owner: str, level: int) -> None:
        references = await session.client.get_node(node_id).get_references(
            refs=ua.ObjectIds.HierarchicalReferences,
            direction=ua.BrowseDirection.Forward,
            nodeclassmask=ua.NodeClass.Object | ua.NodeClass.Variable,
        )
        for ref in references:
            child = ref.NodeId
            if child.NamespaceIndex == 0:
                continue
            child_path = (*path, ref.BrowseName.Name)
            if ref.NodeClass == ua.NodeClass.Variable:
                if ref.TypeDefinition.Identifier == ua.ObjectIds.PropertyType:
                    continue
                if pattern is None or fnmatchcase(".".join(child_path), pattern):
                    found.append((child_path, child, owner))
            elif level < depth:
                is_folder = ref.TypeDefinition.Identifier == ua.ObjectIds.FolderType
                await walk(
                    child, child_path, owner if is_folder else ref.BrowseName.Name, level + 1
                )

    await walk(start_id, (), "", 1)
    types = await session.client.uaclient.read_attributes(
        [node_id for _, node_id, _ in found], ua.AttributeIds.DataType
    )
    variables = []
    for (path, node_id, owner), data_type in zip(found, types, strict=True):
        type_id = data_type.Value.Value if data_type.Value is not None else None
        type_name = _TYPE_NAMES.get(type_id.Identifier, str(type_id)) if type_id else "?"
        address = format_node_id(node_id, session.namespaces)
        variables.append(DiscoveredVariable(path, address, type_name, owner or path[-2]))
    return variables


def render_equipment_yaml(variables: list[DiscoveredVariable], connection_id: str) -> str:
    """YAML ``equipment:`` list entries (without the ``equipment:`` key itself)."""
    by_equipment: dict[str, list[DiscoveredVariable]] = {}
    for variable in variables:
        by_equipment.setdefault(variable.equipment, []).append(variable)
    lines: list[str] = []
    used_ids: set[str] = set()
    for name, members in by_equipment.items():
        equipment_id = _unique(_level(name), used_ids)
        lines += [f"- id: {equipment_id}", f"  connection: {connection_id}", "  tags:"]
        tag_ids: set[str] = set()
        roles = _roles(members)
        for variable, role in zip(members, roles, strict=True):
            tag_id = _unique(_ident(variable.path[-1]), tag_ids)
            entry = f"{{id: {tag_id}, role: {role}, address: {json.dumps(variable.address)}"
            if role in _COUNTERS:
                entry += f", counter_width: {_COUNTER_WIDTHS[variable.data_type]}"
            lines.append(f"    - {entry}}}  # {variable.data_type} {'/'.join(variable.path)}")
    return "\n".join(lines) + "\n"


def _roles(members: list[DiscoveredVariable]) -> list[str]:
    """Guessed roles, demoted to process_value where the config rules need it."""
    roles = []
    for variable in members:
        key = re.sub(r"[^a-z0-9]", "", variable.path[-1].lower())
        role = next((r for r, names in _ROLE_NAMES.items() if key in names), "process_value")
        if role in _COUNTERS and variable.data_type not in _COUNTER_WIDTHS:
            role = "process_value"
        if role != "process_value" and role in roles:
            role = "process_value"  # one tag per role
        roles.append(role)
    counters = [r for r in _COUNTERS if r in roles]
    keep = set(counters[:2]) if len(counters) >= 2 else set()  # two counters or none
    return [r if r not in _COUNTERS or r in keep else "process_value" for r in roles]


def _ident(name: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    cleaned = re.sub(r"[^a-z0-9_.-]+", "_", snake).strip("_.-") or "tag"
    return cleaned[:60]


def _level(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "equipment"
    return cleaned[:60]


def _unique(base: str, used: set[str]) -> str:
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}_{n}", n + 1
    used.add(candidate)
    return candidate
