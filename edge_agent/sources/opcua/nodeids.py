"""Node id strings from the configuration -> asyncua NodeIds (pure).

A configured address is ``ns=<index>;<id>``, ``nsu=<namespace URI>;<id>`` or a bare
``<id>`` (namespace 0), where ``<id>`` is ``i=<number>``, ``s=<string>``, ``g=<GUID>`` or
``b=<base64>``. ``nsu=`` ids are resolved against the server's NamespaceArray on every
new session, because a server may give a URI another index after a restart.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from asyncua import ua

from edge_agent.sources.opcua.errors import NamespaceUnknownError, NodeIdError


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A parsed node id: namespace by URI or index, and the identifier part."""

    text: str
    namespace_uri: str | None
    namespace_index: int
    kind: str
    """``i``, ``s``, ``g`` or ``b``."""
    identifier: str

    def resolve(self, namespaces: Sequence[str]) -> ua.NodeId:
        """The NodeId on a server with this NamespaceArray.

        Raises NamespaceUnknownError when a ``nsu=`` URI is not in ``namespaces``.
        """
        index = self.namespace_index
        if self.namespace_uri is not None:
            try:
                index = list(namespaces).index(self.namespace_uri)
            except ValueError:
                raise NamespaceUnknownError(
                    f"node {self.text!r}: the server has no namespace "
                    f"{self.namespace_uri!r}; its namespaces are {list(namespaces)}"
                ) from None
        return _node_id(self.kind, self.identifier, index)


def parse_node_id(text: str) -> NodeRef:
    """Parse a configured node id; NodeIdError explains what is wrong."""
    rest = text
    uri: str | None = None
    index = 0
    if rest.startswith("nsu="):
        uri, sep, rest = rest[4:].partition(";")
        if not sep or not uri:
            raise NodeIdError(f"node id {text!r}: 'nsu=<namespace URI>;' must precede the id")
    elif rest.startswith("ns="):
        number, sep, rest = rest[3:].partition(";")
        if not sep or not number.isdigit():
            raise NodeIdError(f"node id {text!r}: 'ns=<index>;' must precede the id")
        index = int(number)
    kind, sep, identifier = rest.partition("=")
    if not sep or kind not in ("i", "s", "g", "b") or not identifier:
        raise NodeIdError(
            f"node id {text!r}: the id must be i=<number>, s=<string>, g=<GUID> or b=<base64>"
        )
    ref = NodeRef(text, uri, index, kind, identifier)
    _node_id(kind, identifier, index)  # validate the identifier itself
    return ref


def _node_id(kind: str, identifier: str, index: int) -> ua.NodeId:
    try:
        if kind == "i":
            return ua.NodeId(int(identifier), index, ua.NodeIdType.Numeric)
        if kind == "s":
            return ua.NodeId(identifier, index, ua.NodeIdType.String)
        if kind == "g":
            return ua.NodeId(uuid.UUID(identifier), index, ua.NodeIdType.Guid)
        return ua.NodeId(
            base64.b64decode(identifier, validate=True), index, ua.NodeIdType.ByteString
        )
    except (ValueError, binascii.Error) as exc:
        raise NodeIdError(f"node id {kind}={identifier!r} is malformed: {exc}") from None


def format_node_id(node_id: ua.NodeId, namespaces: Sequence[str]) -> str:
    """A portable config string for a NodeId: ``nsu=<URI>;...`` outside namespace 0."""
    kind = {
        ua.NodeIdType.TwoByte: "i",
        ua.NodeIdType.FourByte: "i",
        ua.NodeIdType.Numeric: "i",
        ua.NodeIdType.String: "s",
        ua.NodeIdType.Guid: "g",
        ua.NodeIdType.ByteString: "b",
    }[node_id.NodeIdType]
    identifier = node_id.Identifier
    if kind == "b":
        identifier = base64.b64encode(identifier).decode()
    text = f"{kind}={identifier}"
    index = node_id.NamespaceIndex
    if index == 0:
        return text
    if index < len(namespaces):
        return f"nsu={namespaces[index]};{text}"
    return f"ns={index};{text}"
