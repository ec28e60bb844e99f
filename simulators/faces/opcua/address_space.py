"""The simulated machines as an OPC UA address space (ISA-95 equipment tree).

::

    Objects
    └── plant1                      FolderType   ns=<ours>;s=plant1
        └── stamping                FolderType   ns=<ours>;s=plant1.stamping
            └── line1               FolderType   ns=<ours>;s=plant1.stamping.line1
                └── press-1         BaseObjectType  ...;s=plant1.stamping.line1.press-1
                    ├── State, StateName, Reason, TotalCount, ...   variables
                    ├── ResetCounters()                              method
                    └── ProcessValues          FolderType
                        └── temperature, speed, ...                 variables

Node ids are the catalogue's string ids (``simulators.tags``) in the namespace of the
scenario's ``namespace_uri``; browse names are the tag names (the part after
``ProcessValues.`` inside that folder). Variables are read-only for clients.

Folders, objects and methods go through asyncua's checked AddNodes path; variables
through :class:`~.fast_nodes.VariableFactory` (the 100-machine scenario's 11k
variables: ~9 s the checked way, well under a second this way).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asyncua import ua
from asyncua.server.address_space import AttributeValue
from asyncua.server.internal_server import InternalServer

from simulators.faces.opcua.fast_nodes import (
    VariableFactory,
    VariableSpec,
    add_checked,
    variable_item,
)
from simulators.tags import DataType, TagSpec

PROCESS_VALUES_FOLDER = "ProcessValues"
RESET_COUNTERS = "ResetCounters"

VARIANT_TYPES: dict[DataType, ua.VariantType] = {
    DataType.BOOL: ua.VariantType.Boolean,
    DataType.UINT16: ua.VariantType.UInt16,
    DataType.UINT32: ua.VariantType.UInt32,
    DataType.FLOAT32: ua.VariantType.Float,
    DataType.FLOAT64: ua.VariantType.Double,
    DataType.STRING: ua.VariantType.String,
}
CONVERTERS: dict[DataType, Callable[[Any], Any]] = {
    DataType.BOOL: bool,
    DataType.UINT16: int,
    DataType.UINT32: int,
    DataType.FLOAT32: float,
    DataType.FLOAT64: float,
    DataType.STRING: str,
}
_DEFAULTS: dict[DataType, Any] = {DataType.BOOL: False, DataType.STRING: ""}

MethodCallback = Callable[..., Awaitable[list[ua.Variant]]]


@dataclass(slots=True)
class ServedVariable:
    """One variable node and the state the face keeps for it."""

    tag: TagSpec
    node_id: ua.NodeId
    variant_type: ua.VariantType
    convert: Callable[[Any], Any]
    # asyncua's holder of the node's current DataValue; writing ``.value`` is the
    # fast path (what AddressSpace.write_attribute_value does minus type checks).
    attribute: AttributeValue
    good: ua.DataValue | None = None  # last value from the model
    fault_status: str | None = None  # status name served instead, while a fault is on


@dataclass
class AddressSpaceIndex:
    """What was built: variables by (machine, tag name) and method nodes by machine."""

    namespace_index: int
    variables: dict[tuple[str, str], ServedVariable] = field(default_factory=dict)
    methods: dict[str, ua.NodeId] = field(default_factory=dict)


def build_address_space(
    iserver: InternalServer,
    namespace_index: int,
    machine_paths: dict[str, list[str]],
    tags: dict[str, list[TagSpec]],
    reset_counters: Callable[[str], MethodCallback],
) -> AddressSpaceIndex:
    """Create folders, machine objects, variables and methods for every machine.

    ``machine_paths`` maps machine name -> [site, area, line, machine];
    ``reset_counters(machine)`` returns the async method callback for that machine.
    """
    ns = namespace_index
    nodes: list[ua.AddNodesItem | VariableSpec] = []  # in browse order
    variables: list[tuple[TagSpec, VariableSpec]] = []
    folders: set[str] = set()
    index = AddressSpaceIndex(ns)
    for machine, path in machine_paths.items():
        parent = ua.NodeId(ua.ObjectIds.ObjectsFolder)
        for depth in range(1, len(path)):
            folder_id = ".".join(path[:depth])
            node_id = ua.NodeId(folder_id, ns)
            if folder_id not in folders:
                folders.add(folder_id)
                nodes.append(_folder(node_id, path[depth - 1], parent, ns, ua.ObjectIds.Organizes))
            parent = node_id
        machine_id = ua.NodeId(".".join(path), ns)
        nodes.append(_machine_object(machine_id, machine, parent, ns))
        pv_folder = ua.NodeId(f"{machine_id.Identifier}.{PROCESS_VALUES_FOLDER}", ns)
        has_pv_folder = False
        for tag in tags[machine]:
            if tag.opcua_id is None:
                continue
            node_id = ua.NodeId(tag.opcua_id, ns)
            if tag.is_command:
                if tag.name == RESET_COUNTERS:
                    nodes.append(_method(node_id, tag.name, machine_id, ns))
                    index.methods[machine] = node_id
                continue
            owner, browse_name = machine_id, tag.name
            if tag.name.startswith(PROCESS_VALUES_FOLDER + "."):
                if not has_pv_folder:
                    has_pv_folder = True
                    nodes.append(
                        _folder(
                            pv_folder,
                            PROCESS_VALUES_FOLDER,
                            machine_id,
                            ns,
                            ua.ObjectIds.HasComponent,
                        )
                    )
                owner, browse_name = pv_folder, tag.name.split(".", 1)[1]
            spec = _variable_spec(node_id, browse_name, owner, ns, tag)
            nodes.append(spec)
            variables.append((tag, spec))
    _add_in_order(iserver, nodes)
    for machine, method_id in index.methods.items():
        iserver.aspace.add_method_callback(method_id, reset_counters(machine))
    for tag, spec in variables:
        attribute = iserver.aspace[spec.node_id].attributes[ua.AttributeIds.Value]
        index.variables[(tag.machine, tag.name)] = ServedVariable(
            tag, spec.node_id, VARIANT_TYPES[tag.data_type], CONVERTERS[tag.data_type], attribute
        )
    return index


def _add_in_order(iserver: InternalServer, nodes: list[ua.AddNodesItem | VariableSpec]) -> None:
    """Objects and methods the checked way; variables through the factory, whose
    prototype is the first variable, added the checked way."""
    factory: VariableFactory | None = None
    for node in nodes:
        if isinstance(node, ua.AddNodesItem):
            add_checked(iserver.node_mgt_service, [node])
        elif factory is None:
            add_checked(iserver.node_mgt_service, [variable_item(node)])
            factory = VariableFactory(iserver.aspace, node.node_id)
        else:
            factory.add(node)


def _variable_spec(
    node_id: ua.NodeId, name: str, parent: ua.NodeId, ns: int, tag: TagSpec
) -> VariableSpec:
    variant_type = VARIANT_TYPES[tag.data_type]
    return VariableSpec(
        node_id=node_id,
        browse_name=ua.QualifiedName(name, ns),
        display_name=ua.LocalizedText(name),
        description=ua.LocalizedText(f"{name} [{tag.unit}]" if tag.unit else name),
        data_type=ua.NodeId(variant_type.value),  # built-in type ids equal variant types
        value=ua.Variant(_DEFAULTS.get(tag.data_type, 0), variant_type),
        parent=parent,
    )


def _folder(
    node_id: ua.NodeId, name: str, parent: ua.NodeId, ns: int, reference: int
) -> ua.AddNodesItem:
    attrs = ua.ObjectAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(name)
    attrs.EventNotifier = 0
    attrs.WriteMask = attrs.UserWriteMask = 0
    return _item(
        node_id, name, parent, ns, ua.NodeClass.Object, reference, ua.ObjectIds.FolderType, attrs
    )


def _machine_object(node_id: ua.NodeId, name: str, parent: ua.NodeId, ns: int) -> ua.AddNodesItem:
    attrs = ua.ObjectAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(f"simulated machine {name}")
    attrs.EventNotifier = 0
    attrs.WriteMask = attrs.UserWriteMask = 0
    return _item(
        node_id,
        name,
        parent,
        ns,
        ua.NodeClass.Object,
        ua.ObjectIds.Organizes,
        ua.ObjectIds.BaseObjectType,
        attrs,
    )


def _method(node_id: ua.NodeId, name: str, parent: ua.NodeId, ns: int) -> ua.AddNodesItem:
    attrs = ua.MethodAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText("Reset TotalCount, GoodCount and ScrapCount to 0")
    attrs.WriteMask = attrs.UserWriteMask = 0
    attrs.Executable = attrs.UserExecutable = True
    item = _item(
        node_id, name, parent, ns, ua.NodeClass.Method, ua.ObjectIds.HasComponent, 0, attrs
    )
    item.TypeDefinition = ua.NodeId()
    return item


def _item(
    node_id: ua.NodeId,
    name: str,
    parent: ua.NodeId,
    ns: int,
    node_class: ua.NodeClass,
    reference: int,
    type_definition: int,
    attrs: Any,
) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = node_id
    item.BrowseName = ua.QualifiedName(name, ns)
    item.NodeClass = node_class
    item.ParentNodeId = parent
    item.ReferenceTypeId = ua.NodeId(reference)
    item.TypeDefinition = ua.NodeId(type_definition)
    item.NodeAttributes = attrs
    return item
