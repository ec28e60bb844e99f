"""A fast, exact decoder for the PublishResponses that carry subscribed data changes.

With 10,000 subscribed values/s, asyncua's generic decoder (``struct_from_binary`` in
``UaSession.publish``) took 29% of the agent's Python time: it walks every field
through closures and builds each dataclass via ``__init__``/``__post_init__``. This
reads the common shape with ``struct.unpack_from`` and builds the very same objects
(equal with ``==``, and the same in the fields ``==`` ignores). Anything else (arrays
and other Variant types, diagnostic infos, string tables, additional headers, status
change or event notifications, odd lengths, truncated data) goes to asyncua with the
buffer untouched, so the result or the exception is asyncua's own; nothing partial
is ever returned.

Exact means as asyncua 2.1 decodes, not as OPC UA Part 6 says: asyncua reads a
DataValue's picoseconds after both timestamps (the spec puts each after its own).

asyncua internals relied on (pinned ``<2.2``; recheck on upgrade): ``Buffer._data``,
``_cur_pos`` and ``_size``; ``UaSession.publish`` (copied in :func:`_publish`),
``_send_request`` and ``logger``; the slots of Variant, DataValue, StatusCode and
MonitoredItemNotification (checked at import, else the fast path is off); and
``ua.win_epoch_to_datetime`` (mirrored in :func:`_datetime_of` and :class:`_Times`).
"""

from __future__ import annotations

import struct
import types
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import ua
from asyncua.client.ua_session import UaSession
from asyncua.common.utils import Buffer
from asyncua.ua import uatypes
from asyncua.ua.ua_binary import get_string_encoding, struct_from_binary
from asyncua.ua.uaerrors import UaStructParsingError

_EPOCH = uatypes.FILETIME_EPOCH_AS_UTC_DATETIME
_MAX_DATETIME = uatypes.MAX_FILETIME_EPOCH_AS_UTC_DATETIME
_MAX_FILETIME = uatypes.MAX_OPC_FILETIME

_PUBLISH_RESPONSE_ID = ua.ObjectIds.PublishResponse_Encoding_DefaultBinary
_DATA_CHANGE_ID = ua.ObjectIds.DataChangeNotification_Encoding_DefaultBinary

_u16 = struct.Struct("<H").unpack_from
_i32 = struct.Struct("<i").unpack_from
_u32 = struct.Struct("<I").unpack_from
_i64 = struct.Struct("<q").unpack_from
_handle_mask = struct.Struct("<IB").unpack_from
_header = struct.Struct("<qIIBi").unpack_from  # Timestamp .. StringTable length
_message = struct.Struct("<Iqi").unpack_from  # SequenceNumber, PublishTime, count

# Variant type byte (Boolean=1 .. Double=11) -> (unpack_from, size with the type byte).
_FIXED: dict[int, tuple[Any, int]] = {
    vtype: (struct.Struct("<" + code).unpack_from, 1 + struct.calcsize("<" + code))
    for vtype, code in zip(range(1, 12), "?bBhHiIqQfd", strict=True)
}
_NULL, _STRING, _DATETIME, _BYTESTRING = 0, 12, 13, 15
_VARIANT_TYPES = tuple(ua.VariantType(number) for number in range(26))


class _Unsupported(Exception):
    """The message has a shape the fast path leaves to asyncua."""


# Objects are built with __new__ and slot stores (half the cost of __init__); that is
# only the same object while the layout is the one this was written against.
_LAYOUT = {
    ua.Variant: "Value VariantType Dimensions is_array",
    ua.DataValue: "Encoding Value StatusCode SourceTimestamp ServerTimestamp "
    "SourcePicoseconds ServerPicoseconds",
    ua.StatusCode: "value",
    ua.MonitoredItemNotification: "ClientHandle Value",
}
_LAYOUT_OK = all(
    tuple(f.name for f in fields(cls)) == tuple(names.split()) == cls.__slots__
    for cls, names in _LAYOUT.items()
)


def _datetime_of(filetime: int) -> datetime:
    """OPC UA DateTime (100 ns since 1601) as asyncua's win_epoch_to_datetime gives it."""
    if filetime >= _MAX_FILETIME:
        return _MAX_DATETIME
    if filetime < 0:
        return _EPOCH
    return _EPOCH + timedelta(0, 0, filetime // 10)


class _Times:
    """DateTimes met in one message: a publish repeats timestamps, datetimes are immutable.

    Look up ``known.get(filetime) or new(filetime)``. A new one is built from its
    minute's fields: the datetime constructor takes half the time of asyncua's epoch +
    timedelta, for the same value.
    """

    __slots__ = ("known", "minutes")

    def __init__(self) -> None:
        self.known: dict[int, datetime] = {}
        self.minutes: dict[int, tuple[int, int, int, int, int]] = {}

    def new(self, filetime: int) -> datetime:
        if not 0 <= filetime < _MAX_FILETIME:
            stamp = self.known[filetime] = _datetime_of(filetime)
            return stamp
        minute, rest = divmod(filetime, 600_000_000)
        parts = self.minutes.get(minute)
        if parts is None:
            start = _EPOCH + timedelta(minutes=minute)
            parts = start.year, start.month, start.day, start.hour, start.minute
            self.minutes[minute] = parts
        year, month, day, hour, minute = parts
        second, rest = divmod(rest, 10_000_000)
        stamp = datetime(year, month, day, hour, minute, second, rest // 10, UTC)
        self.known[filetime] = stamp
        return stamp


def decode_publish_response(data: Buffer) -> ua.PublishResponse:
    """Decode a PublishResponse body as ``struct_from_binary`` would, only faster.

    ``data`` is left as it was when the fast path decodes it; otherwise asyncua reads it.
    """
    response = decode_fast(data)
    if response is None:
        return struct_from_binary(ua.PublishResponse, data)
    return response


def decode_fast(data: Buffer) -> ua.PublishResponse | None:
    """The fast path alone: the response, or None when asyncua must decode ``data``."""
    raw = data._data
    if not _LAYOUT_OK or type(raw) is not bytes:
        return None
    start, size = data._cur_pos, data._size
    if start or size != len(raw):
        raw = raw[start : start + size]
    try:
        return _decode(raw)
    except Exception:  # truncated, unsupported or odd: asyncua decides (and raises)
        return None


def _node_id(raw: bytes, pos: int) -> tuple[int, int, int, int]:
    """A numeric NodeId: (identifier, namespace, NodeIdType, next position)."""
    kind = raw[pos]  # (TwoByte ids are below 256: never one we decode)
    if kind == 1:
        return _u16(raw, pos + 2)[0], raw[pos + 1], 1, pos + 4
    if kind == 2:
        namespace, identifier = struct.unpack_from("<HI", raw, pos + 1)
        return identifier, namespace, 2, pos + 7
    raise _Unsupported


def _uint32s(raw: bytes, pos: int) -> tuple[list[int] | None, int]:
    """An array of UInt32 (-1: None) and the position after it."""
    (count,) = _i32(raw, pos)
    if count < -1:
        raise _Unsupported
    if count == -1:
        return None, pos + 4
    return list(struct.unpack_from(f"<{count}I", raw, pos + 4)), pos + 4 + 4 * count


def _no_items(count: int) -> list[Any] | None:
    """An absent (-1: None) or empty array; anything in it is left to asyncua."""
    if count == -1:
        return None
    if count:
        raise _Unsupported
    return []


def _decode(raw: bytes) -> ua.PublishResponse:
    identifier, namespace, kind, pos = _node_id(raw, 0)
    if identifier != _PUBLISH_RESPONSE_ID or namespace:
        raise _Unsupported
    type_id = ua.NodeId(identifier, namespace, ua.NodeIdType(kind))
    stamp, handle, result, diagnostics, strings = _header(raw, pos)
    pos += 24
    # No ServiceDiagnostics, a null AdditionalHeader (and no strings, see _no_items).
    if diagnostics or raw[pos - 3 : pos] != b"\x00\x00\x00":
        raise _Unsupported
    header = ua.ResponseHeader(
        Timestamp=_datetime_of(stamp),
        RequestHandle=handle,
        ServiceResult=ua.StatusCode(result),
        ServiceDiagnostics=ua.DiagnosticInfo(),
        StringTable=_no_items(strings),
        AdditionalHeader=ua.ExtensionObject(),
    )
    (subscription_id,) = _u32(raw, pos)
    sequence_numbers, pos = _uint32s(raw, pos + 4)
    (more,) = struct.unpack_from("<?", raw, pos)
    sequence_number, publish_time, count = _message(raw, pos + 1)
    pos += 17
    if count == -1:
        notification_data = None
    elif count < -1:
        raise _Unsupported
    else:
        notification_data = []
        for _ in range(count):
            notification, pos = _data_change(raw, pos)
            notification_data.append(notification)
    message = ua.NotificationMessage(
        SequenceNumber=sequence_number,
        PublishTime=_datetime_of(publish_time),
        NotificationData=notification_data,
    )
    codes, pos = _uint32s(raw, pos)
    parameters = ua.PublishResult(
        SubscriptionId=subscription_id,
        AvailableSequenceNumbers=sequence_numbers,
        MoreNotifications=more,
        NotificationMessage=message,
        Results=None if codes is None else [ua.StatusCode(code) for code in codes],
        DiagnosticInfos=_no_items(_i32(raw, pos)[0]),
    )
    return ua.PublishResponse(TypeId=type_id, ResponseHeader=header, Parameters=parameters)


def _data_change(raw: bytes, pos: int) -> tuple[ua.DataChangeNotification, int]:
    """One NotificationData ExtensionObject holding a DataChangeNotification."""
    identifier, namespace, _kind, pos = _node_id(raw, pos)
    encoding, length = struct.unpack_from("<Bi", raw, pos)
    pos += 5
    end = pos + length
    # asyncua decodes the body from a copy bounded by its length and skips the rest.
    bad_body = encoding != 1 or length < 1 or end > len(raw)
    if identifier != _DATA_CHANGE_ID or namespace or bad_body:
        raise _Unsupported
    items, body_pos = _monitored_items(raw, pos)
    diagnostics = _no_items(_i32(raw, body_pos)[0])
    if body_pos + 4 > end:
        raise _Unsupported
    return ua.DataChangeNotification(MonitoredItems=items, DiagnosticInfos=diagnostics), end


def _monitored_items(raw: bytes, pos: int) -> tuple[list[ua.MonitoredItemNotification], int]:
    """The MonitoredItems of a DataChangeNotification: the hot loop, kept inline."""
    (count,) = _i32(raw, pos)
    pos += 4
    if count < -1:
        raise _Unsupported
    new = object.__new__
    notification_cls, value_cls = ua.MonitoredItemNotification, ua.DataValue
    variant_cls, status_cls = ua.Variant, ua.StatusCode
    handle_mask, i64, u16, u32 = _handle_mask, _i64, _u16, _u32
    fixed, variant_types = _FIXED, _VARIANT_TYPES
    times = _Times()
    known, new_time = times.known.get, times.new
    encoding = get_string_encoding()
    items: list[ua.MonitoredItemNotification] = []
    append = items.append
    for _ in range(count):
        handle, mask = handle_mask(raw, pos)
        pos += 5
        if mask & 0xC0:
            raise _Unsupported
        vtype = 0
        value = None
        if mask & 1:
            vtype = raw[pos]
            unpack = fixed.get(vtype)
            if unpack is not None:
                value = unpack[0](raw, pos + 1)[0]
                pos += unpack[1]
            else:
                value, pos = _other_value(raw, pos + 1, vtype, times, encoding)
        variant = new(variant_cls)
        variant.Value = value
        variant.VariantType = variant_types[vtype]
        variant.Dimensions = None
        variant.is_array = False
        status = new(status_cls)
        status.value = 0
        if mask & 2:
            status.value = u32(raw, pos)[0]
            pos += 4
        data_value = new(value_cls)
        data_value.Encoding = 0
        data_value.Value = variant
        data_value.StatusCode = status
        data_value.SourceTimestamp = data_value.ServerTimestamp = None
        data_value.SourcePicoseconds = data_value.ServerPicoseconds = None
        if mask & 4:
            (filetime,) = i64(raw, pos)
            data_value.SourceTimestamp = known(filetime) or new_time(filetime)
            pos += 8
        if mask & 8:
            (filetime,) = i64(raw, pos)
            data_value.ServerTimestamp = known(filetime) or new_time(filetime)
            pos += 8
        if mask & 16:
            data_value.SourcePicoseconds = u16(raw, pos)[0]
            pos += 2
        if mask & 32:
            data_value.ServerPicoseconds = u16(raw, pos)[0]
            pos += 2
        item = new(notification_cls)
        item.ClientHandle = handle
        item.Value = data_value
        append(item)
    return items, pos


def _other_value(
    raw: bytes, pos: int, vtype: int, times: _Times, encoding: str
) -> tuple[str | bytes | datetime | None, int]:
    """A scalar String, ByteString, DateTime or Null at ``pos`` (after the type byte)."""
    if vtype in (_STRING, _BYTESTRING):
        (length,) = _i32(raw, pos)
        pos += 4
        if length == -1:
            return None, pos
        if length < 0:
            raise _Unsupported
        chunk = raw[pos : pos + length]
        if vtype == _STRING:
            return chunk.decode(encoding, errors="surrogateescape"), pos + length
        return chunk, pos + length
    if vtype == _DATETIME:
        (filetime,) = _i64(raw, pos)
        return times.known.get(filetime) or times.new(filetime), pos + 8
    if vtype == _NULL:
        return None, pos
    raise _Unsupported  # Guid, NodeId, ExtensionObject, ..., arrays (bit 7), dimensions


async def _publish(
    self: UaSession, acks: list[ua.SubscriptionAcknowledgement]
) -> ua.PublishResponse:
    """asyncua 2.1's UaSession.publish, decoding with :func:`decode_publish_response`."""
    self.logger.debug("publish %r", acks)
    request = ua.PublishRequest()
    request.Parameters.SubscriptionAcknowledgements = acks if acks else []
    data = await self._send_request(request, timeout=0)
    try:
        response = decode_publish_response(data)
    except Exception as ex:
        self.logger.exception("Error parsing notification from server")
        raise UaStructParsingError from ex
    return response


def install(session: UaSession) -> None:
    """Make this one client session decode its PublishResponses here (servers untouched)."""
    session.publish = types.MethodType(_publish, session)  # type: ignore[method-assign]
