"""The fast PublishResponse decoder gives exactly what asyncua's struct_from_binary gives.

Responses are built with asyncua types and encoded by asyncua (or, for byte patterns
asyncua's encoder cannot produce, by hand) and decoded both ways. Equality is ``==``
plus a stricter comparison of every field (types, ``is_array``, ``Encoding``, NodeId
types, float bit patterns) so that the fast path cannot differ where ``==`` looks away.
"""

from __future__ import annotations

import asyncio
import math
import struct
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asyncua import ua
from asyncua.client.ua_session import UaSession
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary
from asyncua.ua.uaerrors import UaStructParsingError
from hypothesis import given, settings
from hypothesis import strategies as st

import edge_agent.sources.opcua  # noqa: F401  (the agent's other speed-up, as in the agent)
from edge_agent.sources.opcua import _publish_decode
from edge_agent.sources.opcua._publish_decode import decode_fast, decode_publish_response

T0 = datetime(2026, 11, 29, 6, 0, 0, 123456, tzinfo=UTC)
VT = ua.VariantType

SCALARS: list[tuple[Any, ua.VariantType]] = [
    (True, VT.Boolean),
    (False, VT.Boolean),
    (-128, VT.SByte),
    (255, VT.Byte),
    (-32768, VT.Int16),
    (65535, VT.UInt16),
    (-(2**31), VT.Int32),
    (2**32 - 1, VT.UInt32),
    (-(2**63), VT.Int64),
    (2**64 - 1, VT.UInt64),
    (1.5, VT.Float),
    (-1e300, VT.Double),
    (math.inf, VT.Double),
    ("Grüße, press 1", VT.String),
    ("", VT.String),
    (None, VT.String),
    (T0, VT.DateTime),
    (datetime(1601, 1, 1, tzinfo=UTC), VT.DateTime),
    (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), VT.DateTime),
    (b"\x00\xffraw", VT.ByteString),
    (b"", VT.ByteString),
    (None, VT.ByteString),
    (None, VT.Null),
]


def shape(obj: Any) -> Any:
    """Every field, recursively, with types: stricter than the dataclasses' own ==."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return (type(obj), tuple((f.name, shape(getattr(obj, f.name))) for f in fields(obj)))
    if isinstance(obj, list | tuple):
        return (type(obj), tuple(shape(item) for item in obj))
    if isinstance(obj, float):
        return (float, struct.pack("<d", obj))  # NaN equals NaN, -0.0 differs from 0.0
    if isinstance(obj, datetime):
        return (type(obj), obj, obj.tzinfo)
    return (type(obj), obj)


def decoded_both_ways(body: bytes) -> tuple[Any, Any]:
    """(asyncua's outcome, the agent's outcome): a response or (exception type, text)."""
    outcomes = []
    for decode in (
        lambda data: struct_from_binary(ua.PublishResponse, data),
        decode_publish_response,
    ):
        try:
            outcomes.append(decode(Buffer(body)))
        except Exception as exc:
            outcomes.append((type(exc), str(exc)))
    return outcomes[0], outcomes[1]


def assert_fast_and_exact(body: bytes) -> ua.PublishResponse:
    expected = struct_from_binary(ua.PublishResponse, Buffer(body))
    fast = decode_fast(Buffer(body))
    assert fast is not None, "the fast path refused a message it should handle"
    if struct_from_binary(ua.PublishResponse, Buffer(body)) == expected:  # no NaN inside
        assert fast == expected
    assert shape(fast) == shape(expected)
    assert shape(decode_publish_response(Buffer(body))) == shape(expected)
    return fast


def assert_falls_back_exactly(body: bytes) -> None:
    assert decode_fast(Buffer(body)) is None
    expected, got = decoded_both_ways(body)
    assert got == expected
    assert shape(got) == shape(expected)


def data_value(value: Any = None, vtype: ua.VariantType = VT.Double, **kw: Any) -> ua.DataValue:
    kw.setdefault("SourceTimestamp", T0)
    kw.setdefault("ServerTimestamp", T0 + timedelta(milliseconds=3))
    return ua.DataValue(Value=ua.Variant(value, vtype), **kw)


def response(*notifications: Any, **parameters: Any) -> bytes:
    """An encoded PublishResponse; each notification is a NotificationData body."""
    message = ua.NotificationMessage(
        SequenceNumber=17, PublishTime=T0, NotificationData=list(notifications)
    )
    parameters.setdefault("SubscriptionId", 4)
    parameters.setdefault("AvailableSequenceNumbers", [17])
    parameters.setdefault("MoreNotifications", False)
    result = ua.PublishResult(NotificationMessage=message, **parameters)
    header = ua.ResponseHeader(Timestamp=T0, RequestHandle=99)
    return struct_to_binary(ua.PublishResponse(ResponseHeader=header, Parameters=result))


def changes(*values: ua.DataValue, first_handle: int = 1) -> ua.DataChangeNotification:
    return ua.DataChangeNotification(
        MonitoredItems=[
            ua.MonitoredItemNotification(ClientHandle=first_handle + n, Value=value)
            for n, value in enumerate(values)
        ]
    )


@pytest.mark.parametrize(("value", "vtype"), SCALARS)
def test_every_scalar_type(value: Any, vtype: ua.VariantType) -> None:
    fast = assert_fast_and_exact(response(changes(data_value(value, vtype))))
    decoded = fast.Parameters.NotificationMessage.NotificationData[0].MonitoredItems[0]
    assert decoded.Value.Value.VariantType is vtype


# DataValue fields by encoding mask bit (asyncua's order, see _publish_decode)
MASK_FIELDS = (
    "Value",
    "StatusCode",
    "SourceTimestamp",
    "ServerTimestamp",
    "SourcePicoseconds",
    "ServerPicoseconds",
)


@pytest.mark.parametrize("mask", range(64))
def test_every_data_value_encoding_mask(mask: int) -> None:
    value = ua.DataValue(
        Value=ua.Variant(7, VT.Int32),
        StatusCode=ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue),
        SourceTimestamp=T0,
        ServerTimestamp=T0 + timedelta(seconds=1),
        SourcePicoseconds=1234,
        ServerPicoseconds=65535,
    )
    for bit, name in enumerate(MASK_FIELDS):
        if not mask & (1 << bit):
            setattr(value, name, None)  # asyncua encodes None fields as absent
    body = response(changes(value, data_value(2.5)))
    assert body.count(bytes([mask])) >= 1
    assert_fast_and_exact(body)


def test_bad_status_without_value_and_without_timestamps() -> None:
    value = ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown))
    value.Value = None
    fast = assert_fast_and_exact(response(changes(value)))
    decoded = fast.Parameters.NotificationMessage.NotificationData[0].MonitoredItems[0].Value
    assert decoded.Value == ua.Variant()
    assert decoded.Value.is_array is False
    assert decoded.StatusCode.value == ua.StatusCodes.BadNodeIdUnknown
    assert decoded.SourceTimestamp is None
    assert decoded.ServerTimestamp is None


def test_many_notifications_in_several_data_change_notifications() -> None:
    first = changes(*(data_value(n * 0.5) for n in range(300)))
    second = changes(data_value("text", VT.String), data_value(9, VT.UInt16), first_handle=900)
    fast = assert_fast_and_exact(response(first, second, changes()))
    data = fast.Parameters.NotificationMessage.NotificationData
    assert [len(n.MonitoredItems) for n in data] == [300, 2, 0]


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"AvailableSequenceNumbers": [], "Results": [], "DiagnosticInfos": []},
        {"AvailableSequenceNumbers": None, "Results": None, "DiagnosticInfos": None},
        {"AvailableSequenceNumbers": [1, 2, 2**32 - 1], "MoreNotifications": True},
        {"Results": [ua.StatusCode(), ua.StatusCode(ua.StatusCodes.BadSequenceNumberUnknown)]},
    ],
)
def test_publish_result_fields(parameters: dict[str, Any]) -> None:
    assert_fast_and_exact(response(changes(data_value(1.0)), **parameters))


def test_keep_alive_without_notification_data() -> None:
    assert_fast_and_exact(response(AvailableSequenceNumbers=[]))
    absent = ua.PublishResponse()
    absent.Parameters.NotificationMessage.NotificationData = None
    absent.ResponseHeader.StringTable = None
    assert_fast_and_exact(struct_to_binary(absent))


def test_bad_service_result_and_buffers_not_starting_at_zero() -> None:
    failed = ua.PublishResponse()
    failed.ResponseHeader.ServiceResult = ua.StatusCode(ua.StatusCodes.BadTooManyPublishRequests)
    assert_fast_and_exact(struct_to_binary(failed))
    body = response(changes(data_value(1.0)))
    expected = struct_from_binary(ua.PublishResponse, Buffer(body))
    for buffer in (Buffer(b"junk" + body, 4), Buffer(body + b"trailing", 0, len(body))):
        fast = decode_fast(buffer)
        assert fast is not None
        assert shape(fast) == shape(expected)


def test_numeric_type_ids_as_other_servers_send_them() -> None:
    body = response(changes(data_value(1.0)), changes(data_value(2, VT.Int64)))
    for number in (829, 811):
        four_byte = b"\x01\x00" + struct.pack("<H", number)
        body = body.replace(four_byte, b"\x02\x00\x00" + struct.pack("<I", number))
    fast = assert_fast_and_exact(body)
    assert fast.TypeId.NodeIdType is ua.NodeIdType.Numeric


@pytest.mark.parametrize(
    "filetime", [0, 1, 9, 10, 123456789012345678, -1, -(2**63), 2**63 - 1, 2650467743990000000]
)
def test_datetime_special_cases_as_asyncua(filetime: int) -> None:
    body = bytearray(response(changes(data_value(T0, VT.DateTime))))
    encoded = struct.pack("<q", ua.datetime_to_win_epoch(T0))
    assert body.count(encoded) >= 4  # header, publish time, variant, source timestamp
    fast = assert_fast_and_exact(bytes(body.replace(encoded, struct.pack("<q", filetime))))
    assert fast.ResponseHeader.Timestamp.tzinfo is not None


def test_nan_and_odd_booleans_are_decoded_as_asyncua_does() -> None:
    body = response(changes(data_value(math.nan), data_value(True, VT.Boolean)))
    true_at = body.rindex(bytes([VT.Boolean, 1]))
    assert_fast_and_exact(body[: true_at + 1] + b"\x07" + body[true_at + 2 :])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(response(changes(data_value([1.0, 2.0], VT.Double))), id="array"),
        pytest.param(response(changes(data_value([[1, 2], [3, 4]], VT.Int32))), id="matrix"),
        pytest.param(response(changes(data_value(ua.NodeId(5, 2), VT.NodeId))), id="nodeid"),
        pytest.param(response(changes(data_value(ua.Guid(int=7), VT.Guid))), id="guid"),
        pytest.param(
            response(changes(data_value(ua.LocalizedText("x"), VT.LocalizedText))), id="text"
        ),
        pytest.param(
            response(changes(data_value(ua.Argument(Name="a"), VT.ExtensionObject))),
            id="extension-object",
        ),
        pytest.param(
            response(ua.StatusChangeNotification(Status=ua.StatusCode(ua.StatusCodes.BadTimeout))),
            id="status-change",
        ),
        pytest.param(
            response(
                changes(data_value(1.0)),
                ua.EventNotificationList(
                    Events=[ua.EventFieldList(ClientHandle=3, EventFields=[ua.Variant(1.0)])]
                ),
            ),
            id="events-after-changes",
        ),
        pytest.param(
            response(changes(data_value(1.0)), DiagnosticInfos=[ua.DiagnosticInfo(SymbolicId=1)]),
            id="result-diagnostics",
        ),
        pytest.param(
            response(
                ua.DataChangeNotification(
                    MonitoredItems=[ua.MonitoredItemNotification(1, data_value(1.0))],
                    DiagnosticInfos=[ua.DiagnosticInfo(AdditionalInfo="why")],
                )
            ),
            id="data-change-diagnostics",
        ),
    ],
)
def test_what_the_fast_path_leaves_to_asyncua(body: bytes) -> None:
    assert_falls_back_exactly(body)


def test_header_extras_are_left_to_asyncua() -> None:
    for change in (
        {"ServiceDiagnostics": ua.DiagnosticInfo(SymbolicId=3)},
        {"StringTable": ["a", "b"]},
        {"AdditionalHeader": ua.ExtensionObject(ua.NodeId(5, 1), b"\x01")},
    ):
        message = ua.PublishResponse(ResponseHeader=ua.ResponseHeader(Timestamp=T0, **change))
        assert_falls_back_exactly(struct_to_binary(message))


def test_truncated_and_corrupted_input_raises_as_asyncua() -> None:
    body = response(
        changes(data_value(1.0), data_value("text", VT.String), data_value(b"ab", VT.ByteString)),
        Results=[ua.StatusCode()],
    )
    for cut in range(len(body)):
        expected, got = decoded_both_ways(body[:cut])
        assert isinstance(expected, tuple)  # asyncua raises on every cut
        assert got == expected
    # A DataChangeNotification body length shorter or longer than its content.
    length_at = body.index(struct.pack("<H", 811)) + 3
    (length,) = struct.unpack_from("<i", body, length_at)
    for wrong in (1, length - 1, length + 1, length + 10_000, 0, -1, -2):
        bad = body[:length_at] + struct.pack("<i", wrong) + body[length_at + 4 :]
        expected, got = decoded_both_ways(bad)
        assert shape(got) == shape(expected)


def test_string_lengths_beyond_the_message_raise_as_asyncua() -> None:
    body = response(changes(data_value("abc", VT.String)))
    at = body.index(b"abc") - 4
    for wrong in (4, 1000, -2, -1):
        expected, got = decoded_both_ways(body[:at] + struct.pack("<i", wrong) + body[at + 4 :])
        assert shape(got) == shape(expected)


def test_install_touches_one_session_and_keeps_asyncuas_error_handling() -> None:
    original = UaSession.publish
    session = UaSession(client=None)  # type: ignore[arg-type]
    _publish_decode.install(session)
    assert UaSession.publish is original
    assert UaSession(client=None).publish.__func__ is original  # type: ignore[arg-type, attr-defined]
    body = response(changes(data_value(2.0)))
    sent: list[Any] = []

    async def send(request: Any, **kw: Any) -> Buffer:
        sent.append((request, kw))
        return Buffer(reply)

    session._send_request = send  # type: ignore[method-assign]
    reply = body
    acks = [ua.SubscriptionAcknowledgement(SubscriptionId=4, SequenceNumber=16)]
    got = asyncio.run(session.publish(acks))
    assert got == struct_from_binary(ua.PublishResponse, Buffer(body))
    request, kw = sent[0]
    assert isinstance(request, ua.PublishRequest)
    assert kw == {"timeout": 0}
    assert request.Parameters.SubscriptionAcknowledgements == acks
    reply = body[:-3]
    with pytest.raises(UaStructParsingError) as caught:
        asyncio.run(session.publish([]))
    assert isinstance(caught.value.__cause__, ua.utils.NotEnoughData)


# -- property: random DataValues, encoded by hand so that every bit pattern occurs --------

FIXED_SIZES = {1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 4, 8: 8, 9: 8, 10: 4, 11: 8, 13: 8}


@st.composite
def raw_variants(draw: st.DrawFn) -> bytes:
    vtype = draw(st.sampled_from([0, 12, 15, *FIXED_SIZES]))
    if vtype in FIXED_SIZES:
        return bytes([vtype]) + draw(
            st.binary(min_size=FIXED_SIZES[vtype], max_size=FIXED_SIZES[vtype])
        )
    if vtype == 0:
        return b"\x00"
    text = draw(st.one_of(st.none(), st.binary(max_size=12), st.text(max_size=6).map(str.encode)))
    if text is None:
        return bytes([vtype]) + struct.pack("<i", -1)
    return bytes([vtype]) + struct.pack("<i", len(text)) + text


@st.composite
def raw_data_values(draw: st.DrawFn) -> bytes:
    mask = draw(st.integers(0, 63))
    out = bytes([mask])
    if mask & 1:
        out += draw(raw_variants())
    if mask & 2:
        out += struct.pack("<I", draw(st.integers(0, 2**32 - 1)))
    times = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(0, 2650467743990000000))
    for bit in (4, 8):
        if mask & bit:
            out += struct.pack("<q", draw(times))
    for bit in (16, 32):
        if mask & bit:
            out += struct.pack("<H", draw(st.integers(0, 65535)))
    return out


def raw_response(notifications: list[list[bytes]]) -> bytes:
    """A PublishResponse around hand-encoded DataValues, one DataChangeNotification each."""
    empty = ua.PublishResponse(ResponseHeader=ua.ResponseHeader(Timestamp=T0))
    empty.Parameters.NotificationMessage = ua.NotificationMessage(PublishTime=T0)
    head = struct_to_binary(empty)[: -(4 + 4 + 4)]  # NotificationData, Results, Diagnostics
    out = head + struct.pack("<i", len(notifications))
    for values in notifications:
        items = b"".join(struct.pack("<I", n) + value for n, value in enumerate(values))
        body = struct.pack("<i", len(values)) + items + struct.pack("<i", -1)
        out += b"\x01\x00" + struct.pack("<H", 811) + b"\x01" + struct.pack("<i", len(body)) + body
    return out + struct.pack("<ii", 0, -1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(raw_data_values(), max_size=8), min_size=1, max_size=3))
def test_random_data_values_decode_exactly_as_asyncua(notifications: list[list[bytes]]) -> None:
    assert_fast_and_exact(raw_response(notifications))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(raw_data_values(), min_size=1, max_size=4),
    st.integers(min_value=0),
    st.integers(0, 255),
)
def test_random_corruption_decodes_or_fails_as_asyncua(
    values: list[bytes], where: int, byte: int
) -> None:
    body = bytearray(raw_response([values]))
    body[where % len(body)] = byte
    expected, got = decoded_both_ways(bytes(body))
    assert shape(got) == shape(expected)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.integers(0, 2650467743999999999),
            st.integers(133_000_000_000_000_000, 133_000_000_600_000_000),
        ),
        max_size=20,
    )
)
def test_datetimes_are_asyncuas(filetimes: list[int]) -> None:
    times = _publish_decode._Times()
    for filetime in filetimes:
        expected = ua.win_epoch_to_datetime(filetime)
        got = times.known.get(filetime) or times.new(filetime)
        assert shape(got) == shape(expected)
        assert times.known[filetime] is got  # the cache answers the second time
