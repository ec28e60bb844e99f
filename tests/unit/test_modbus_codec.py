"""The pure Modbus register codec: known register values and round trips."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.faces.modbus.codec import (
    STRING_CHARS,
    CodecError,
    decode,
    decoder,
    encode,
    encoder,
    registers_for,
)
from simulators.scenario.models import ByteOrder
from simulators.tags import DataType

BIG, LITTLE = ByteOrder.BIG, ByteOrder.LITTLE
ORDERS = [(BIG, BIG), (BIG, LITTLE), (LITTLE, BIG), (LITTLE, LITTLE)]

# (data type, value, byte order, word order, registers on the wire)
KNOWN = [
    (DataType.UINT16, 0x1234, BIG, BIG, [0x1234]),
    (DataType.UINT16, 0x1234, BIG, LITTLE, [0x1234]),
    (DataType.UINT16, 0x1234, LITTLE, BIG, [0x3412]),
    (DataType.UINT16, 0x1234, LITTLE, LITTLE, [0x3412]),
    (DataType.UINT16, 65535, LITTLE, LITTLE, [0xFFFF]),
    (DataType.UINT32, 0x11223344, BIG, BIG, [0x1122, 0x3344]),
    (DataType.UINT32, 0x11223344, BIG, LITTLE, [0x3344, 0x1122]),
    (DataType.UINT32, 0x11223344, LITTLE, BIG, [0x2211, 0x4433]),
    (DataType.UINT32, 0x11223344, LITTLE, LITTLE, [0x4433, 0x2211]),
    (DataType.UINT32, 65536, BIG, BIG, [0x0001, 0x0000]),
    (DataType.UINT32, 65536, BIG, LITTLE, [0x0000, 0x0001]),
    (DataType.FLOAT32, 123.456, BIG, BIG, [0x42F6, 0xE979]),
    (DataType.FLOAT32, 123.456, BIG, LITTLE, [0xE979, 0x42F6]),
    (DataType.FLOAT32, 123.456, LITTLE, BIG, [0xF642, 0x79E9]),
    (DataType.FLOAT32, 123.456, LITTLE, LITTLE, [0x79E9, 0xF642]),
    (DataType.FLOAT32, -1.0, BIG, BIG, [0xBF80, 0x0000]),
    (DataType.FLOAT64, 123.456, BIG, BIG, [0x405E, 0xDD2F, 0x1A9F, 0xBE77]),
    (DataType.FLOAT64, 123.456, BIG, LITTLE, [0xBE77, 0x1A9F, 0xDD2F, 0x405E]),
    (DataType.FLOAT64, 123.456, LITTLE, BIG, [0x5E40, 0x2FDD, 0x9F1A, 0x77BE]),
    (DataType.FLOAT64, 123.456, LITTLE, LITTLE, [0x77BE, 0x9F1A, 0x2FDD, 0x5E40]),
    (DataType.BOOL, True, BIG, BIG, [1]),
    (DataType.BOOL, False, LITTLE, LITTLE, [0]),
]


@pytest.mark.parametrize(("dtype", "value", "byte_order", "word_order", "registers"), KNOWN)
def test_encode_gives_known_registers(
    dtype: DataType, value: object, byte_order: ByteOrder, word_order: ByteOrder, registers: list
) -> None:
    assert encode(value, dtype, byte_order, word_order) == registers
    assert list(encoder(dtype, byte_order, word_order)(value)) == registers


@pytest.mark.parametrize(("dtype", "value", "byte_order", "word_order", "registers"), KNOWN)
def test_decode_known_registers(
    dtype: DataType, value: object, byte_order: ByteOrder, word_order: ByteOrder, registers: list
) -> None:
    decoded = decode(registers, dtype, byte_order, word_order)
    if dtype is DataType.FLOAT32:
        assert decoded == struct.unpack(">f", struct.pack(">f", value))[0]
    else:
        assert decoded == value


@pytest.mark.parametrize(
    ("byte_order", "word_order", "first_registers"),
    [
        (BIG, BIG, [0x4142, 0x4300]),
        (BIG, LITTLE, [0x4142, 0x4300]),  # word order does not apply to strings
        (LITTLE, BIG, [0x4241, 0x0043]),  # byte order swaps the characters of a register
        (LITTLE, LITTLE, [0x4241, 0x0043]),
    ],
)
def test_string_layout(
    byte_order: ByteOrder, word_order: ByteOrder, first_registers: list[int]
) -> None:
    registers = encode("ABC", DataType.STRING, byte_order, word_order)
    assert registers == first_registers + [0] * 14
    assert decode(registers, DataType.STRING, byte_order, word_order) == "ABC"


def test_string_cuts_at_32_characters_and_replaces_non_ascii() -> None:
    long = "x" * 40
    assert decode(encode(long, DataType.STRING), DataType.STRING) == "x" * STRING_CHARS
    assert decode(encode("Maß", DataType.STRING), DataType.STRING) == "Ma?"
    assert encode("", DataType.STRING) == [0] * 16


def test_string_type_names_are_accepted() -> None:
    assert encode(1.0, "float32", "little", "big") == encode(1.0, DataType.FLOAT32, LITTLE, BIG)
    assert registers_for("float64") == 4
    assert registers_for(DataType.STRING) == 16


@pytest.mark.parametrize(
    ("dtype", "value"),
    [
        (DataType.UINT16, 65536),
        (DataType.UINT16, -1),
        (DataType.UINT32, 1 << 32),
        (DataType.UINT32, 1.5),
        (DataType.FLOAT32, 1e39),
    ],
)
def test_encode_rejects_values_that_do_not_fit(dtype: DataType, value: object) -> None:
    with pytest.raises(CodecError):
        encode(value, dtype)


@pytest.mark.parametrize(
    ("dtype", "registers"),
    [
        (DataType.UINT32, [1]),
        (DataType.FLOAT64, [0, 0, 0]),
        (DataType.STRING, [0] * 15),
        (DataType.UINT16, [70000]),
        (DataType.STRING, [70000] + [0] * 15),
        (DataType.BOOL, []),
    ],
)
def test_decode_rejects_wrong_register_lists(dtype: DataType, registers: list[int]) -> None:
    with pytest.raises(CodecError):
        decode(registers, dtype)


def test_nan_and_infinity_survive() -> None:
    for dtype in (DataType.FLOAT32, DataType.FLOAT64):
        for byte_order, word_order in ORDERS:
            regs = encode(math.nan, dtype, byte_order, word_order)
            assert math.isnan(decode(regs, dtype, byte_order, word_order))
            regs = encode(-math.inf, dtype, byte_order, word_order)
            assert decode(regs, dtype, byte_order, word_order) == -math.inf


# -- properties ---------------------------------------------------------------------------

orders = st.sampled_from(ORDERS)
values_by_type = {
    DataType.UINT16: st.integers(0, 0xFFFF),
    DataType.UINT32: st.integers(0, 0xFFFFFFFF),
    DataType.FLOAT32: st.floats(width=32, allow_nan=False),
    DataType.FLOAT64: st.floats(allow_nan=False),
    DataType.BOOL: st.booleans(),
    DataType.STRING: st.text(
        alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=STRING_CHARS
    ),
}
typed_values = st.sampled_from(list(values_by_type)).flatmap(
    lambda dtype: st.tuples(st.just(dtype), values_by_type[dtype])
)


@given(typed_values, orders)
def test_round_trip(
    typed_value: tuple[DataType, object], order: tuple[ByteOrder, ByteOrder]
) -> None:
    dtype, value = typed_value
    registers = encode(value, dtype, *order)
    assert len(registers) == dtype.registers
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode(registers, dtype, *order) == value
    assert decoder(dtype, *order)(registers) == value


@given(
    st.sampled_from([DataType.UINT32, DataType.FLOAT32, DataType.FLOAT64]).flatmap(
        lambda dtype: st.tuples(st.just(dtype), values_by_type[dtype])
    ),
    st.sampled_from([BIG, LITTLE]),
)
def test_little_word_order_reverses_the_registers(
    typed_value: tuple[DataType, object], byte_order: ByteOrder
) -> None:
    dtype, value = typed_value
    big_words = encode(value, dtype, byte_order, BIG)
    assert encode(value, dtype, byte_order, LITTLE) == big_words[::-1]


@given(typed_values.filter(lambda tv: tv[0] is not DataType.BOOL))
def test_little_byte_order_swaps_the_bytes_of_every_register(
    typed_value: tuple[DataType, object],
) -> None:
    dtype, value = typed_value
    for word_order in (BIG, LITTLE):
        big_bytes = encode(value, dtype, BIG, word_order)
        swapped = [((r & 0xFF) << 8) | (r >> 8) for r in big_bytes]
        assert encode(value, dtype, LITTLE, word_order) == swapped


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_float32_encoding_is_the_nearest_float32_or_an_error(value: float) -> None:
    try:
        nearest = struct.unpack(">f", struct.pack(">f", value))[0]
    except OverflowError:  # beyond float32's range after rounding
        with pytest.raises(CodecError):
            encode(value, DataType.FLOAT32)
        return
    assert decode(encode(value, DataType.FLOAT32), DataType.FLOAT32) == nearest
