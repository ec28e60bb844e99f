"""What the simulator sends is asyncua's: PublishResponse bytes and the DataValues built."""

from __future__ import annotations

import asyncio
import math
import struct
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from asyncua import ua
from asyncua.common.connection import TransportLimits
from asyncua.common.utils import Buffer
from asyncua.server.uaprocessor import UaProcessor
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.faces.opcua import data_values, publish_encoding
from simulators.faces.opcua.publish_encoding import publish_response_to_binary
from simulators.faces.opcua.transport import (
    FaultGate,
    FaultInjectingProtocol,
    PacedTransport,
    PublishEncodingProcessor,
)
from simulators.faults.state import FaultState

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def response(*notification_data: object, sequence: int = 3) -> ua.PublishResponse:
    result = ua.PublishResult(
        SubscriptionId=12,
        AvailableSequenceNumbers=[1, 2, sequence],
        MoreNotifications=False,
        NotificationMessage=ua.NotificationMessage(
            SequenceNumber=sequence, PublishTime=T0, NotificationData=list(notification_data)
        ),
        Results=[ua.StatusCode(), ua.StatusCode(ua.StatusCodes.BadSequenceNumberUnknown)],
    )
    out = ua.PublishResponse(Parameters=result)
    out.ResponseHeader.RequestHandle = 77
    out.ResponseHeader.Timestamp = T0
    return out


def items(*values: ua.DataValue, first_handle: int = 1) -> ua.DataChangeNotification:
    return ua.DataChangeNotification(
        MonitoredItems=[
            ua.MonitoredItemNotification(ClientHandle=first_handle + i, Value=v)
            for i, v in enumerate(values)
        ]
    )


def dv(value: object, vtype: ua.VariantType, status: int = 0, **ts: datetime) -> ua.DataValue:
    return ua.DataValue(
        ua.Variant(value, vtype),
        ua.StatusCode(status),
        ts.get("source", T0),
        ts.get("server", T0 + timedelta(milliseconds=3)),
    )


def assert_same_bytes(message: ua.PublishResponse) -> bytes:
    expected = struct_to_binary(message)
    got = publish_response_to_binary(message)
    assert got == expected
    return got


FACE_VALUES = [
    dv(21.25, ua.VariantType.Double),
    dv(1.5, ua.VariantType.Float),
    dv(7, ua.VariantType.UInt32),
    dv(65535, ua.VariantType.UInt16),
    dv(True, ua.VariantType.Boolean),
    dv("Running", ua.VariantType.String),
    dv("", ua.VariantType.String),
    dv(math.nan, ua.VariantType.Double),
]


def test_the_face_s_value_types_encode_as_asyncua_does() -> None:
    message = response(items(*FACE_VALUES))
    encoded = assert_same_bytes(message)
    decoded = struct_from_binary(ua.PublishResponse, Buffer(encoded))
    (notification,) = decoded.Parameters.NotificationMessage.NotificationData
    assert [n.Value.Value.Value for n in notification.MonitoredItems][:3] == [21.25, 1.5, 7]


@pytest.mark.parametrize(
    "value",
    [
        ua.DataValue(None, ua.StatusCode(ua.StatusCodes.BadSensorFailure), T0, T0),  # a fault
        ua.DataValue(ua.Variant(3.0, ua.VariantType.Double), ua.StatusCode(0x40A50000), T0, T0),
        ua.DataValue(ua.Variant(2.0, ua.VariantType.Double)),  # no timestamps
        ua.DataValue(ua.Variant(2.0, ua.VariantType.Double), None, None, T0),  # no status
        ua.DataValue(ua.Variant(2.0, ua.VariantType.Double), SourcePicoseconds=5),
        ua.DataValue(
            ua.Variant(2.0, ua.VariantType.Double), ServerTimestamp=T0, ServerPicoseconds=9
        ),
        ua.DataValue(ua.Variant([1.0, 2.0], ua.VariantType.Double)),  # array
        ua.DataValue(ua.Variant([[1, 2], [3, 4]], ua.VariantType.Int32, Dimensions=[2, 2])),
        ua.DataValue(ua.Variant(T0, ua.VariantType.DateTime), SourceTimestamp=T0),
        ua.DataValue(ua.Variant(ua.NodeId(5, 2), ua.VariantType.NodeId)),
        ua.DataValue(ua.Variant(ua.LocalizedText("Running"), ua.VariantType.LocalizedText)),
        ua.DataValue(ua.Variant(b"\x00\x01", ua.VariantType.ByteString)),
        ua.DataValue(ua.Variant(-(2**63), ua.VariantType.Int64)),
        ua.DataValue(ua.Variant(None, ua.VariantType.Null)),
        # Timestamps out of OPC UA's range, naive and in another zone.
        ua.DataValue(ua.Variant(1, ua.VariantType.Byte), SourceTimestamp=datetime(1500, 1, 1)),
        ua.DataValue(
            ua.Variant(1, ua.VariantType.SByte),
            SourceTimestamp=datetime(2026, 11, 29, 7, 0),
            ServerTimestamp=datetime(2026, 11, 29, 7, 0, tzinfo=timezone(timedelta(hours=1))),
        ),
    ],
)
def test_any_data_value_encodes_as_asyncua_does(value: ua.DataValue) -> None:
    assert_same_bytes(response(items(value, FACE_VALUES[0])))


def test_other_notifications_and_several_data_changes_keep_their_place() -> None:
    status = ua.StatusChangeNotification(Status=ua.StatusCode(ua.StatusCodes.BadTimeout))
    events = ua.EventNotificationList(
        Events=[ua.EventFieldList(ClientHandle=4, EventFields=[ua.Variant(1.0)])]
    )
    message = response(items(*FACE_VALUES[:2]), events, items(FACE_VALUES[3]), status)
    assert_same_bytes(message)


def test_empty_and_keep_alive_responses_are_asyncua_s_own() -> None:
    assert_same_bytes(response())
    assert_same_bytes(response(ua.DataChangeNotification()))
    assert_same_bytes(response(ua.DataChangeNotification(MonitoredItems=None)))  # type: ignore[arg-type]
    with_diagnostics = items(FACE_VALUES[0])
    with_diagnostics.DiagnosticInfos = [ua.DiagnosticInfo(SymbolicId=3)]
    assert_same_bytes(response(with_diagnostics))


def test_the_response_itself_is_not_changed() -> None:
    """asyncua keeps the PublishResult for Republish."""
    notification = items(*FACE_VALUES)
    message = response(notification)
    before = struct_to_binary(message)
    publish_response_to_binary(message)
    assert message.Parameters.NotificationMessage.NotificationData == [notification]
    assert struct_to_binary(message) == before


def test_what_asyncua_cannot_encode_fails_as_in_asyncua() -> None:
    bad = items(dv(2**40, ua.VariantType.UInt32))
    with pytest.raises(ua.UaError, match=r"Cannot pack VariantType\.UInt32"):
        struct_to_binary(response(bad))
    with pytest.raises(ua.UaError, match=r"Cannot pack VariantType\.UInt32"):
        publish_response_to_binary(response(bad))
    with pytest.raises(struct.error):
        struct_to_binary(response(items(FACE_VALUES[0], first_handle=-1)))
    with pytest.raises(struct.error):
        publish_response_to_binary(response(items(FACE_VALUES[0], first_handle=-1)))


def test_every_scalar_variant_type_is_asyncua_s_serializer() -> None:
    """The precompiled number packers use asyncua's own struct formats."""
    for vtype, (encoding, _) in publish_encoding._SCALAR_PACKERS.items():
        assert encoding == bytes([vtype.value])


timestamps = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1590, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    ),
    st.datetimes(min_value=datetime(1590, 1, 1), max_value=datetime(9999, 12, 31)),
)
variants = st.one_of(
    st.none(),
    st.builds(ua.Variant, st.floats(), st.just(ua.VariantType.Double)),
    st.builds(ua.Variant, st.floats(width=32), st.just(ua.VariantType.Float)),
    st.builds(ua.Variant, st.integers(0, 2**32 - 1), st.just(ua.VariantType.UInt32)),
    st.builds(ua.Variant, st.integers(0, 2**16 - 1), st.just(ua.VariantType.UInt16)),
    st.builds(ua.Variant, st.booleans(), st.just(ua.VariantType.Boolean)),
    st.builds(ua.Variant, st.text(), st.just(ua.VariantType.String)),
    st.builds(ua.Variant, st.lists(st.floats(), max_size=3), st.just(ua.VariantType.Double)),
)
any_data_values = st.builds(
    ua.DataValue,
    Value=variants,
    StatusCode=st.one_of(st.none(), st.builds(ua.StatusCode, st.integers(0, 2**32 - 1))),
    SourceTimestamp=timestamps,
    ServerTimestamp=timestamps,
    SourcePicoseconds=st.one_of(st.none(), st.integers(0, 9999)),
)
notifications = st.lists(
    st.builds(
        ua.MonitoredItemNotification,
        ClientHandle=st.integers(0, 2**32 - 1),
        Value=any_data_values,
    ),
    max_size=8,
).map(lambda monitored: ua.DataChangeNotification(MonitoredItems=monitored))


@settings(max_examples=300, deadline=None)
@given(st.lists(notifications, min_size=1, max_size=3))
def test_any_data_change_notification_encodes_as_asyncua_does(
    data: list[ua.DataChangeNotification],
) -> None:
    assert_same_bytes(response(*data))


class _Connection:
    """Records what UaProcessor.send_response hands to the secure channel."""

    def message_to_binary(self, body: bytes, message_type: object, request_id: int) -> bytes:
        return repr((body, message_type, request_id)).encode()


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def _sent_by(processor_class: type[UaProcessor], message: object) -> list[bytes]:
    processor = object.__new__(processor_class)  # only the send path's attributes
    processor._connection = _Connection()  # type: ignore[assignment]
    transport = _Transport()
    processor._transport = transport  # type: ignore[assignment]
    processor.send_response(41, ua.SequenceHeader(RequestId=9), message)
    return transport.written


@pytest.mark.parametrize(
    "message",
    [
        response(items(*FACE_VALUES)),
        response(),
        ua.ReadResponse(Results=[FACE_VALUES[0]]),
    ],
    ids=["data-changes", "keep-alive", "read"],
)
def test_the_connection_sends_what_asyncua_sends(message: object) -> None:
    """The face's processor differs from asyncua's only in how it encodes publishes."""
    expected = _sent_by(UaProcessor, message)
    assert _sent_by(PublishEncodingProcessor, message) == expected


class _Socket:
    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 4840)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


async def test_each_connection_of_the_face_uses_the_encoding_processor() -> None:
    iserver = SimpleNamespace(
        max_connections=4,
        max_pending_messages_per_connection=4,
        max_pending_activation_seconds=0,
        asyncio_transports=[],
    )
    gate = FaultGate(FaultState, lambda: None)
    protocol = FaultInjectingProtocol(
        iserver=iserver,
        policies=[],
        clients=[],
        closing_tasks=[],
        limits=TransportLimits(),
        gate=gate,
    )
    protocol.connection_made(_Socket())  # type: ignore[arg-type]
    try:
        assert type(protocol.processor) is PublishEncodingProcessor
        assert isinstance(protocol.processor._transport, PacedTransport)
    finally:
        assert protocol._task is not None
        protocol._task.cancel()
        await asyncio.gather(protocol._task, return_exceptions=True)


def constructed(value: object, vtype: ua.VariantType, src: datetime, srv: datetime) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value, vtype), ua.StatusCode(), src, srv)


def test_the_installed_asyncua_has_the_data_value_layout_filled_directly() -> None:
    assert data_values.LAYOUT_KNOWN


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.tuples(st.booleans(), st.just(ua.VariantType.Boolean)),
        st.tuples(st.integers(0, 2**16 - 1), st.just(ua.VariantType.UInt16)),
        st.tuples(st.integers(0, 2**32 - 1), st.just(ua.VariantType.UInt32)),
        st.tuples(st.floats(width=32), st.just(ua.VariantType.Float)),
        st.tuples(st.floats(), st.just(ua.VariantType.Double)),
        st.tuples(st.text(), st.just(ua.VariantType.String)),
    ),
    timestamps.filter(lambda ts: ts is not None),
)
def test_a_good_scalar_value_equals_the_constructed_one(
    value_and_type: tuple[object, ua.VariantType], source_ts: datetime
) -> None:
    value, vtype = value_and_type
    built = data_values.good_scalar_value(value, vtype, source_ts, T0)
    expected = constructed(value, vtype, source_ts, T0)
    assert type(built) is ua.DataValue
    assert type(built.Value) is ua.Variant
    assert type(built.StatusCode) is ua.StatusCode
    assert repr(built) == repr(expected)  # every field, NaN included
    assert built.Encoding == expected.Encoding
    assert struct_to_binary(built) == struct_to_binary(expected)


@pytest.mark.parametrize(
    ("value", "vtype"),
    [
        ([1.0, 2.0], ua.VariantType.Double),
        (None, ua.VariantType.String),
        (ua.Variant(1.0, ua.VariantType.Double), ua.VariantType.Double),
        (T0, ua.VariantType.DateTime),
    ],
)
def test_anything_else_is_constructed_by_asyncua(value: object, vtype: ua.VariantType) -> None:
    built = data_values.good_scalar_value(value, vtype, T0, T0)
    assert built == constructed(value, vtype, T0, T0)
    assert built.Value.is_array == constructed(value, vtype, T0, T0).Value.is_array
