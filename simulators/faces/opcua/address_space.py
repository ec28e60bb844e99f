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

Nodes are created with ``AddNodesItem`` batches straight into asyncua's node
management service instead of ``Node.add_variable()`` (one awaited round through the
session per node, and slower with every sibling): the 100-machine scenario builds in
about a second.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asyncua import ua
from asyncua.server.address_space import AttributeValue
from asyncua.server.internal_server import InternalServer

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


class AddressSpaceError(RuntimeError):
    """asyncua refused a node while building the tree (a bug in the catalogue)."""


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
    items: list[ua.AddNodesItem] = []
    folders: set[str] = set()
    index = AddressSpaceIndex(ns)
    objects = ua.NodeId(ua.ObjectIds.ObjectsFolder)
    for machine, path in machine_paths.items():
        parent = objects
        for depth in range(1, len(path)):
            folder_id = ".".join(path[:depth])
            node_id = ua.NodeId(folder_id, ns)
            if folder_id not in folders:
                folders.add(folder_id)
                items.append(_folder(node_id, path[depth - 1], parent, ns, ua.ObjectIds.Organizes))
            parent = node_id
        machine_id = ua.NodeId(".".join(path), ns)
        items.append(_machine_object(machine_id, machine, parent, ns))
        pv_folder: ua.NodeId | None = None
        for tag in tags[machine]:
            if tag.opcua_id is None:
                continue
            node_id = ua.NodeId(tag.opcua_id, ns)
            if tag.is_command:
                if tag.name == RESET_COUNTERS:
                    items.append(_method(node_id, tag.name, machine_id, ns))
                    index.methods[machine] = node_id
                continue
            owner, browse_name = machine_id, tag.name
            if tag.name.startswith(PROCESS_VALUES_FOLDER + "."):
                if pv_folder is None:
                    pv_folder = ua.NodeId(f"{machine_id.Identifier}.{PROCESS_VALUES_FOLDER}", ns)
                    items.append(
                        _folder(
                            pv_folder,
                            PROCESS_VALUES_FOLDER,
                            machine_id,
                            ns,
                            ua.ObjectIds.HasComponent,
                        )
                    )
                owner, browse_name = pv_folder, tag.name.split(".", 1)[1]
            items.append(_variable(node_id, browse_name, owner, ns, tag))
    results = iserver.node_mgt_service.add_nodes(items)
    for item, result in zip(items, results, strict=True):
        if not result.StatusCode.is_good():
            raise AddressSpaceError(
                f"OPC UA node {item.RequestedNewNodeId.to_string()}: {result.StatusCode.name}"
            )
    for machine, method_id in index.methods.items():
        iserver.aspace.add_method_callback(method_id, reset_counters(machine))
    for machine, machine_tags in tags.items():
        for tag in machine_tags:
            if tag.opcua_id is None or tag.is_command:
                continue
            node_id = ua.NodeId(tag.opcua_id, ns)
            attribute = iserver.aspace[node_id].attributes[ua.AttributeIds.Value]
            index.variables[(machine, tag.name)] = ServedVariable(
                tag, node_id, VARIANT_TYPES[tag.data_type], CONVERTERS[tag.data_type], attribute
            )
    return index


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


def _variable(
    node_id: ua.NodeId, name: str, parent: ua.NodeId, ns: int, tag: TagSpec
) -> ua.AddNodesItem:
    variant_type = VARIANT_TYPES[tag.data_type]
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(f"{name} [{tag.unit}]" if tag.unit else name)
    attrs.DataType = ua.NodeId(variant_type.value)  # built-in type ids equal variant types
    attrs.Value = ua.Variant(_DEFAULTS.get(tag.data_type, 0), variant_type)
    attrs.ValueRank = ua.ValueRank.Scalar
    attrs.ArrayDimensions = None
    attrs.WriteMask = attrs.UserWriteMask = 0
    attrs.Historizing = False
    attrs.AccessLevel = attrs.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
    attrs.MinimumSamplingInterval = 0.0
    return _item(
        node_id,
        name,
        parent,
        ns,
        ua.NodeClass.Variable,
        ua.ObjectIds.HasComponent,
        ua.ObjectIds.BaseDataVariableType,
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
