"""Encoding PublishResponses that carry data changes, faster and byte for byte as asyncua.

asyncua 2.1 encodes every response with its generic ``struct_to_binary``, which walks
each dataclass field by field through a serializer per field. A PublishResponse of the
load scenario carries thousands of MonitoredItemNotifications, and encoding them was
more than a third of a simulator's CPU once data changes were queued cheaply (py-spy).

:func:`publish_response_to_binary` encodes the body of each DataChangeNotification
itself (item count, then per item ClientHandle and DataValue, then asyncua's encoding
of DiagnosticInfos) and hands asyncua the response with those bodies already encoded,
as ExtensionObjects of the same type id: asyncua encodes those to the bytes it would
have produced from the notification. A DataValue is encoded here when it is a plain
``ua.DataValue`` without picoseconds whose Variant is a scalar (any type, packed by
asyncua's own scalar serializer); anything else, and any error, goes to asyncua's
encoder (for that DataValue, or for the whole response), so the bytes never differ
(tests/unit/test_sim_opcua_encode.py compares them).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from datetime import datetime
from typing import Any

from asyncua import ua
from asyncua.ua.ua_binary import (
    Primitives,
    Primitives1,
    create_list_serializer,
    create_uatype_serializer,
    struct_to_binary,
    variant_to_binary,
)

_DATA_CHANGE_ENCODING_ID = ua.FourByteNodeId(
    ua.ObjectIds.DataChangeNotification_Encoding_DefaultBinary
)
_INT32 = struct.Struct("<i").pack
_UINT32 = struct.Struct("<I").pack
_HANDLE_AND_MASK = struct.Struct("<IB").pack
# DataValue encoding mask bits, in asyncua's field order (optional fields 0..5).
_HAS_VALUE, _HAS_STATUS, _HAS_SOURCE_TS, _HAS_SERVER_TS = 0x01, 0x02, 0x04, 0x08
_pack_diagnostics = create_list_serializer(ua.DiagnosticInfo)
_pack_datetime = Primitives.DateTime.pack


def _scalar_packer(vtype: ua.VariantType) -> Callable[[Any], bytes]:
    """asyncua's serializer for a scalar of ``vtype``; a precompiled Struct for numbers."""
    primitive = getattr(Primitives1, vtype.name, None)
    if primitive is not None:
        return struct.Struct(primitive.format).pack  # same format, same bytes
    return create_uatype_serializer(vtype)


_SCALAR_PACKERS: dict[ua.VariantType, tuple[bytes, Callable[[Any], bytes]]] = {
    vtype: (bytes([vtype.value & 0b0011_1111]), _scalar_packer(vtype))
    for vtype in ua.VariantType
    if vtype.value <= 25
}


def publish_response_to_binary(response: ua.PublishResponse) -> bytes:
    """``struct_to_binary(response)``, with its DataChangeNotifications encoded here."""
    message = response.Parameters.NotificationMessage
    notifications = message.NotificationData
    if not any(type(n) is ua.DataChangeNotification for n in notifications):
        return struct_to_binary(response)
    try:
        timestamps: dict[datetime, bytes] = {}
        encoded = [
            ua.ExtensionObject(_DATA_CHANGE_ENCODING_ID, _data_change_body(n, timestamps))
            if type(n) is ua.DataChangeNotification
            else n
            for n in notifications
        ]
    except Exception:  # asyncua raises its own error for what it cannot encode
        return struct_to_binary(response)
    # Shallow copies: the response's own objects stay as they are (Republish).
    parameters = dataclasses.replace(
        response.Parameters,
        NotificationMessage=dataclasses.replace(message, NotificationData=encoded),
    )
    return struct_to_binary(dataclasses.replace(response, Parameters=parameters))


def _data_change_body(
    notification: ua.DataChangeNotification, timestamps: dict[datetime, bytes]
) -> bytes:
    """The DataChangeNotification as asyncua's ``struct_to_binary`` encodes it."""
    items = notification.MonitoredItems
    if items is None:
        return struct_to_binary(notification)
    parts = [_INT32(len(items))]
    append = parts.append
    for item in items:
        if type(item) is ua.MonitoredItemNotification:
            _append_item(append, item.ClientHandle, item.Value, timestamps)
        else:
            append(struct_to_binary(item))
    append(_pack_diagnostics(notification.DiagnosticInfos))
    return b"".join(parts)


def _append_item(
    append: Callable[[bytes], None],
    client_handle: int,
    value: ua.DataValue,
    timestamps: dict[datetime, bytes],
) -> None:
    """Append ClientHandle and DataValue, encoded as asyncua does."""
    if (
        type(value) is not ua.DataValue
        or value.SourcePicoseconds is not None
        or value.ServerPicoseconds is not None
    ):
        append(_UINT32(client_handle))
        append(struct_to_binary(value))
        return
    variant = value.Value
    status = value.StatusCode
    source_ts = value.SourceTimestamp
    server_ts = value.ServerTimestamp
    mask = 0
    fields: list[bytes] = []
    if variant is not None:
        mask = _HAS_VALUE
        fields.append(_variant_bytes(variant))
    if status is not None:
        mask |= _HAS_STATUS
        fields.append(
            _UINT32(status.value) if type(status) is ua.StatusCode else struct_to_binary(status)
        )
    if source_ts is not None:
        mask |= _HAS_SOURCE_TS
        fields.append(timestamps.get(source_ts) or _pack_once(timestamps, source_ts))
    if server_ts is not None:
        mask |= _HAS_SERVER_TS
        fields.append(timestamps.get(server_ts) or _pack_once(timestamps, server_ts))
    append(_HANDLE_AND_MASK(client_handle, mask))
    append(b"".join(fields))


def _pack_once(timestamps: dict[Any, bytes], moment: Any) -> bytes:
    """The packed DateTime, kept for the other notifications of the same message."""
    packed = timestamps[moment] = _pack_datetime(moment)
    return packed


def _variant_bytes(variant: ua.Variant) -> bytes:
    """asyncua's ``variant_to_binary`` for a scalar; asyncua's own call otherwise."""
    value = variant.Value
    packer = _SCALAR_PACKERS.get(variant.VariantType)
    if (
        packer is None
        or type(variant) is not ua.Variant
        or variant.is_array
        or isinstance(value, list | tuple)
    ):
        return variant_to_binary(variant)
    encoding, pack = packer
    return encoding + pack(value)
