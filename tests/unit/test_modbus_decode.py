"""Modbus decoding: every type x byte/word order, scale/offset, strings, spans, bits."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config.models import ModbusAddress, ModbusTable, ModbusType, Order
from edge_agent.sources.modbus import DecodeError, Slot, decode_value, span_decoder, value_width
from simulators.faces.modbus import codec

HR = ModbusTable.HOLDING_REGISTER
BIG, LITTLE = Order.BIG, Order.LITTLE
ORDERS = [(BIG, BIG), (BIG, LITTLE), (LITTLE, BIG), (LITTLE, LITTLE)]
FORMATS = {
    ModbusType.INT16: "h",
    ModbusType.UINT16: "H",
    ModbusType.INT32: "i",
    ModbusType.UINT32: "I",
    ModbusType.INT64: "q",
    ModbusType.UINT64: "Q",
    ModbusType.FLOAT32: "f",
    ModbusType.FLOAT64: "d",
}


def addr(
    dtype: ModbusType | str,
    byte_order: Order = BIG,
    word_order: Order = BIG,
    address: int = 0,
    **extra: Any,
) -> ModbusAddress:
    return ModbusAddress(
        table=HR,
        address=address,
        type=ModbusType(dtype),
        byte_order=byte_order,
        word_order=word_order,
        **extra,
    )


def reference_registers(value: Any, dtype: ModbusType, byte_order: Order, word_order: Order):
    """Independent of the decoder: big-endian bytes, cut into words, then reorder."""
    raw = struct.pack(">" + FORMATS[dtype], value)
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if word_order is LITTLE:
        words.reverse()
    if byte_order is LITTLE:
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


# -- known register values --------------------------------------------------------------------

KNOWN = [
    # float32 123.456 = 0x42F6E979 (the simulator codec's documented example)
    (ModbusType.FLOAT32, BIG, BIG, [0x42F6, 0xE979], pytest.approx(123.456, rel=1e-6)),
    (ModbusType.FLOAT32, BIG, LITTLE, [0xE979, 0x42F6], pytest.approx(123.456, rel=1e-6)),
    (ModbusType.FLOAT32, LITTLE, BIG, [0xF642, 0x79E9], pytest.approx(123.456, rel=1e-6)),
    (ModbusType.FLOAT32, LITTLE, LITTLE, [0x79E9, 0xF642], pytest.approx(123.456, rel=1e-6)),
    # int32 -2 = 0xFFFFFFFE
    (ModbusType.INT32, BIG, BIG, [0xFFFF, 0xFFFE], -2),
    (ModbusType.INT32, BIG, LITTLE, [0xFFFE, 0xFFFF], -2),
    (ModbusType.INT32, LITTLE, BIG, [0xFFFF, 0xFEFF], -2),
    (ModbusType.INT32, LITTLE, LITTLE, [0xFEFF, 0xFFFF], -2),
    # uint32 70000 = 0x00011170
    (ModbusType.UINT32, BIG, BIG, [0x0001, 0x1170], 70000),
    (ModbusType.UINT32, BIG, LITTLE, [0x1170, 0x0001], 70000),
    (ModbusType.UINT32, LITTLE, BIG, [0x0100, 0x7011], 70000),
    (ModbusType.UINT32, LITTLE, LITTLE, [0x7011, 0x0100], 70000),
    # 64 bits: all four registers reverse with word order little
    (ModbusType.UINT64, BIG, BIG, [0x0102, 0x0304, 0x0506, 0x0708], 0x0102030405060708),
    (ModbusType.UINT64, BIG, LITTLE, [0x0708, 0x0506, 0x0304, 0x0102], 0x0102030405060708),
    (ModbusType.UINT64, LITTLE, BIG, [0x0201, 0x0403, 0x0605, 0x0807], 0x0102030405060708),
    (ModbusType.UINT64, LITTLE, LITTLE, [0x0807, 0x0605, 0x0403, 0x0201], 0x0102030405060708),
    (ModbusType.INT64, BIG, BIG, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], -1),
    (ModbusType.INT64, LITTLE, LITTLE, [0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF], -2),
    (ModbusType.FLOAT64, BIG, BIG, [0x3FF8, 0, 0, 0], 1.5),
    (ModbusType.FLOAT64, BIG, LITTLE, [0, 0, 0, 0x3FF8], 1.5),
    (ModbusType.FLOAT64, LITTLE, BIG, [0xF83F, 0, 0, 0], 1.5),
    (ModbusType.FLOAT64, LITTLE, LITTLE, [0, 0, 0, 0xF83F], 1.5),
    # 16 bits: word order does not apply
    (ModbusType.INT16, BIG, BIG, [0xFFFE], -2),
    (ModbusType.INT16, BIG, LITTLE, [0xFFFE], -2),
    (ModbusType.INT16, LITTLE, BIG, [0xFEFF], -2),
    (ModbusType.INT16, LITTLE, LITTLE, [0xFEFF], -2),
    (ModbusType.UINT16, BIG, BIG, [0x0102], 0x0102),
    (ModbusType.UINT16, LITTLE, LITTLE, [0x0201], 0x0102),
    (ModbusType.UINT16, LITTLE, BIG, [0x0201], 0x0102),
    (ModbusType.BOOL, BIG, BIG, [0], False),
    (ModbusType.BOOL, BIG, BIG, [2], True),
    (ModbusType.BOOL, LITTLE, LITTLE, [0x0100], True),
]


@pytest.mark.parametrize(("dtype", "byte_order", "word_order", "registers", "expected"), KNOWN)
def test_known_register_values(dtype, byte_order, word_order, registers, expected) -> None:
    value = decode_value(registers, addr(dtype, byte_order, word_order))
    assert value == expected
    if isinstance(expected, bool | int):
        assert type(value) is type(expected)


@pytest.mark.parametrize("dtype", list(FORMATS))
@pytest.mark.parametrize(("byte_order", "word_order"), ORDERS)
def test_every_type_in_every_order_against_an_independent_encoder(
    dtype: ModbusType, byte_order: Order, word_order: Order
) -> None:
    values = {
        ModbusType.INT16: [-32768, -1, 0, 12345, 32767],
        ModbusType.UINT16: [0, 1, 0x1234, 65535],
        ModbusType.INT32: [-(2**31), -70000, 0, 70000, 2**31 - 1],
        ModbusType.UINT32: [0, 65536, 0xDEADBEEF, 2**32 - 1],
        ModbusType.INT64: [-(2**63), -1, 2**40 + 7, 2**63 - 1],
        ModbusType.UINT64: [0, 2**33, 2**64 - 1],
        ModbusType.FLOAT32: [0.0, -1.5, 123.5, 2.0**100, -(2.0**-126)],
        ModbusType.FLOAT64: [0.0, -2.25, 123.456, 1e300],
    }[dtype]
    address = addr(dtype, byte_order, word_order)
    for value in values:
        registers = reference_registers(value, dtype, byte_order, word_order)
        assert decode_value(registers, address) == value


CODEC_TYPES = {
    ModbusType.UINT16: codec.DataType.UINT16,
    ModbusType.UINT32: codec.DataType.UINT32,
    ModbusType.FLOAT32: codec.DataType.FLOAT32,
    ModbusType.FLOAT64: codec.DataType.FLOAT64,
}


@pytest.mark.parametrize("dtype", list(CODEC_TYPES))
@pytest.mark.parametrize(("byte_order", "word_order"), ORDERS)
def test_agrees_with_the_simulator_codec(
    dtype: ModbusType, byte_order: Order, word_order: Order
) -> None:
    encode = codec.encoder(CODEC_TYPES[dtype], byte_order.value, word_order.value)
    address = addr(dtype, byte_order, word_order)
    values = {
        ModbusType.UINT16: (0, 1, 4660, 65535),
        ModbusType.UINT32: (0, 7, 65536, 2**32 - 1),
        ModbusType.FLOAT32: (0.0, -7.25, 65536.0, 1.5e6),
        ModbusType.FLOAT64: (0.0, -7.25, 123.456, 1e300),
    }[dtype]
    for value in values:
        registers = list(encode(value))
        assert decode_value(registers, address) == value


@given(
    st.sampled_from(list(FORMATS)),
    st.sampled_from(ORDERS),
    st.data(),
)
def test_reference_encoded_values_round_trip(dtype, orders, data) -> None:
    fmt = FORMATS[dtype]
    if fmt in "fd":
        width = 32 if fmt == "f" else 64
        value = data.draw(st.floats(width=width, allow_nan=False))
    else:
        bits = struct.calcsize(fmt) * 8
        signed = fmt.islower()
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        value = data.draw(st.integers(low, high))
    registers = reference_registers(value, dtype, *orders)
    assert decode_value(registers, addr(dtype, *orders)) == value


# -- scale/offset and strings -----------------------------------------------------------------


def test_scale_and_offset_apply_to_numbers() -> None:
    assert decode_value([1234], addr("uint16", scale=0.1, offset=-10)) == pytest.approx(113.4)
    assert decode_value([0xFFFF, 0xFFFE], addr("int32", scale=2.0)) == -4.0
    raw = decode_value([1234], addr("uint16"))
    assert raw == 1234
    assert type(raw) is int  # neutral scale keeps integers exact
    offset_only = decode_value([0x42F6, 0xE979], addr("float32", offset=1.0))
    assert offset_only == pytest.approx(124.456, rel=1e-6)
    assert decode_value([3], addr("bool", scale=10.0)) is True  # bools ignore scale


@pytest.mark.parametrize(
    ("registers", "byte_order", "text"),
    [
        ([0x3930, 0x3031, 0, 0], BIG, "9001"),
        ([0x3039, 0x3130, 0, 0], LITTLE, "9001"),  # pack-1 serves strings byte-swapped
        ([0x4142, 0x4300, 0, 0], BIG, "ABC"),
        ([0x4241, 0x0043, 0, 0], LITTLE, "ABC"),
        ([0x4142, 0x0043, 0x4445, 0], BIG, "AB"),  # cut at the first NUL
        ([0x4142, 0x4344, 0x4546, 0x4748], BIG, "ABCDEFGH"),  # no NUL at all
        ([0, 0, 0, 0], BIG, ""),
        ([0x41FF, 0, 0, 0], BIG, "A\ufffd"),  # not ASCII: replaced, not an error
    ],
)
def test_strings(registers: list[int], byte_order: Order, text: str) -> None:
    address = addr("string", byte_order, length=4)
    assert decode_value(registers, address) == text
    # word order never applies to strings
    flipped = addr("string", byte_order, BIG if byte_order is LITTLE else LITTLE, length=4)
    assert decode_value(registers, flipped) == text


@pytest.mark.parametrize("byte_order", [BIG, LITTLE])
def test_strings_agree_with_the_simulator_codec(byte_order: Order) -> None:
    for text in ("", "9001", "panel-x", "x" * 32):
        registers = codec.encode(text, codec.DataType.STRING, byte_order.value)
        address = addr("string", byte_order, length=codec.STRING_REGISTERS)
        assert decode_value(registers, address) == text


# -- spans: one struct per request ------------------------------------------------------------


def test_a_span_with_gaps_overlaps_and_mixed_layouts_equals_value_by_value() -> None:
    slots = [
        Slot("state", 0, addr("uint16", address=0)),
        Slot("total", 2, addr("uint32", address=2)),
        Slot("total_low", 3, addr("uint16", address=3)),  # overlaps total
        Slot("speed_ll", 5, addr("float32", LITTLE, LITTLE, address=5)),
        Slot("speed_bl", 7, addr("float32", BIG, LITTLE, address=7)),
        Slot("energy_lb", 9, addr("float64", LITTLE, BIG, address=9)),
        Slot("order", 13, addr("string", LITTLE, length=2, address=13)),
        Slot("name", 15, addr("string", BIG, length=2, address=15)),
        Slot("temp", 20, addr("int16", scale=0.1, address=20)),  # gap 17-19
    ]
    registers = [0xFFFF] * 21
    registers[0] = 3
    registers[2:4] = reference_registers(70000, ModbusType.UINT32, BIG, BIG)
    registers[5:7] = reference_registers(1.5, ModbusType.FLOAT32, LITTLE, LITTLE)
    registers[7:9] = reference_registers(-2.5, ModbusType.FLOAT32, BIG, LITTLE)
    registers[9:13] = reference_registers(1e10, ModbusType.FLOAT64, LITTLE, BIG)
    registers[13:15] = [0x3039, 0x3130]
    registers[15:17] = [0x4142, 0x4300]
    registers[20] = reference_registers(-123, ModbusType.INT16, BIG, BIG)[0]
    values = span_decoder(HR, slots, 21).decode(registers)
    assert values == [3, 70000, 70000 & 0xFFFF, 1.5, -2.5, 1e10, "9001", "ABC", -12.3]
    for slot, value in zip(slots, values, strict=True):
        own = registers[slot.offset : slot.offset + value_width(slot.address)]
        assert decode_value(own, slot.address) == value


def test_a_span_shorter_or_longer_than_planned_is_an_error() -> None:
    decoder = span_decoder(HR, [Slot("a", 0, addr("uint32"))], 2)
    with pytest.raises(DecodeError, match="expected 2 registers"):
        decoder.decode([1])
    with pytest.raises(DecodeError, match="expected 2 registers"):
        decoder.decode([1, 2, 3])
    with pytest.raises(DecodeError, match="16-bit"):
        decoder.decode([1, 70000])


def test_bits_of_coils_and_discrete_inputs() -> None:
    def bit(table: ModbusTable, address: int) -> ModbusAddress:
        return ModbusAddress(table=table, address=address, type=ModbusType.BOOL)

    di = ModbusTable.DISCRETE_INPUT
    slots = [Slot("run", 0, bit(di, 10)), Slot("idle", 1, bit(di, 11)), Slot("x", 9, bit(di, 19))]
    bits = [True, False, False, False, False, False, False, False, False, True] + [False] * 6
    assert span_decoder(di, slots, 10).decode(bits) == [True, False, True]
    coil = ModbusTable.COIL
    assert span_decoder(coil, [Slot("c", 0, bit(coil, 0))], 1).decode([True] + [False] * 7) == [
        True
    ]
    with pytest.raises(DecodeError, match="expected 10 bits"):
        span_decoder(di, slots, 10).decode([True] * 8)


def test_decoding_throughput_is_one_struct_call_per_span() -> None:
    """Smoke check (not a benchmark): a 124-register float32 span decodes fast."""
    slots = [Slot(f"v{i}", 2 * i, addr("float32", address=2 * i)) for i in range(62)]
    decoder = span_decoder(HR, slots, 124)
    registers = [0x42F6, 0xE979] * 62
    values = decoder.decode(registers)
    assert len(values) == 62
    assert all(math.isclose(v, 123.456, rel_tol=1e-6) for v in values)
