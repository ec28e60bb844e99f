"""Fast start: copy asyncua's standard address space instead of rebuilding it.

``Server.init()`` fills the ~6k standard nodes (namespace 0) from generated code,
which takes about 3 s on a 2-core box, on every start and so on every simulated
restart. The first server in a process fills them as usual and keeps a pristine
copy; later servers get a structural copy of it in about 0.2 s.

The copy has its own NodeData, attribute holders and reference lists; DataValues
are shared because asyncua replaces them rather than mutating them, except list
values (NamespaceArray, ServerArray, ...), which asyncua edits in place and which
are therefore copied. This relies on asyncua 2.x internals (``AddressSpace._nodes``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from asyncua import ua
from asyncua.server.address_space import AttributeValue, NodeData
from asyncua.server.internal_server import InternalServer

_template: dict[ua.NodeId, NodeData] | None = None


class FastInitInternalServer(InternalServer):
    """InternalServer that reuses the standard address space of an earlier one."""

    async def load_standard_address_space(self, shelf_file: Path | None = None) -> None:
        global _template
        if _template is None or shelf_file is not None:
            await super().load_standard_address_space(shelf_file)
            if shelf_file is None:
                _template = copy_nodes(self.aspace._nodes)
            return
        self.aspace._nodes = await asyncio.to_thread(copy_nodes, _template)


def copy_nodes(nodes: dict[ua.NodeId, NodeData]) -> dict[ua.NodeId, NodeData]:
    """A copy that shares nothing asyncua mutates (see the module docstring)."""
    out: dict[ua.NodeId, NodeData] = {}
    for node_id, data in nodes.items():
        node = NodeData(node_id)
        node.references = list(data.references)
        node.call = data.call
        node.attributes = {
            attr: _copy_attribute(holder) for attr, holder in data.attributes.items()
        }
        out[node_id] = node
    return out


def _copy_attribute(holder: AttributeValue) -> AttributeValue:
    value = holder.value
    if value is not None and value.Value is not None and isinstance(value.Value.Value, list):
        variant = dataclasses.replace(value.Value, Value=list(value.Value.Value))
        value = dataclasses.replace(value, Value=variant)
    copy = AttributeValue(value)  # type: ignore[arg-type]
    copy.value_callback = holder.value_callback
    copy.value_setter = holder.value_setter
    return copy
