"""Values <-> Modbus registers for every catalogue data type. Pure (struct only).

Conventions (the simulator serves them; clients decode with the same rules):

* ``byte_order`` is the order of the two bytes inside each register of a numeric
  value (uint16, uint32, float32, float64): ``big`` puts the most significant byte
  in the register's high byte (Modbus' own convention), ``little`` swaps them.
* ``word_order`` is the order of the registers of a multi-register value:
  ``big`` sends the most significant register first, ``little`` the least
  significant first (for a 64-bit value all four registers are reversed).
* With those, float32 123.456 (0x42F6E979) is ``[0x42F6, 0xE979]`` big/big,
  ``[0xE979, 0x42F6]`` big/little, ``[0xF642, 0x79E9]`` little/big and
  ``[0x79E9, 0xF642]`` little/little.
* ``string``: 16 registers, 32 ASCII characters, two per register, NUL padded. The
  first character is in the high byte unless ``byte_order`` is little (then the two
  characters of every register are swapped); ``word_order`` does not apply, the
  characters always run from the first register to the last. Characters outside
  ASCII are served as ``?``; longer text is cut at 32 characters.
* ``bool``: one register, 0 or 1 (coils and discrete inputs carry bools as bits).

Use :func:`encoder` / :func:`decoder` on hot paths: they compile the struct formats
once, so a conversion is one ``pack`` plus one ``unpack``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from simulators.scenario.models import ByteOrder
from simulators.tags import STRING_REGISTERS, DataType

Registers = tuple[int, ...]
Encoder = Callable[[Any], Registers]
Decoder = Callable[[Sequence[int]], Any]

STRING_CHARS = 2 * STRING_REGISTERS

# struct format of the value itself and how many registers it occupies
_NUMERIC: dict[DataType, tuple[str, int]] = {
    DataType.UINT16: ("H", 1),
    DataType.UINT32: ("I", 2),
    DataType.FLOAT32: ("f", 2),
    DataType.FLOAT64: ("d", 4),
}
_STRING_REGS = {
    ByteOrder.BIG: struct.Struct(f">{STRING_REGISTERS}H"),
    ByteOrder.LITTLE: struct.Struct(f"<{STRING_REGISTERS}H"),
}


class CodecError(ValueError):
    """A value or register list that cannot be converted for the given data type."""


def registers_for(data_type: DataType | str) -> int:
    """How many registers a value of ``data_type`` occupies."""
    return DataType(data_type).registers


def _endian(order: ByteOrder | str) -> str:
    return ">" if ByteOrder(order) is ByteOrder.BIG else "<"


def _numeric_structs(
    data_type: DataType, byte_order: ByteOrder | str, word_order: ByteOrder | str
) -> tuple[struct.Struct, struct.Struct]:
    """(value struct, register struct) such that value bytes == register bytes.

    Packing the value with the *word* order's endianness and reading those bytes as
    registers with big endianness when both orders agree (little otherwise) yields
    every one of the four layouts with a single pack and a single unpack.
    """
    fmt, count = _NUMERIC[data_type]
    value_struct = struct.Struct(_endian(word_order) + fmt)
    same = ByteOrder(byte_order) is ByteOrder(word_order)
    register_struct = struct.Struct((">" if same else "<") + "H" * count)
    return value_struct, register_struct


def _string_encoder(byte_order: ByteOrder | str) -> Encoder:
    unpack = _STRING_REGS[ByteOrder(byte_order)].unpack

    def encode_string(value: Any) -> Registers:
        raw = str(value).encode("ascii", errors="replace")[:STRING_CHARS]
        return unpack(raw.ljust(STRING_CHARS, b"\0"))

    return encode_string


def _string_decoder(byte_order: ByteOrder | str) -> Decoder:
    pack = _STRING_REGS[ByteOrder(byte_order)].pack

    def decode_string(registers: Sequence[int]) -> str:
        _check_count(registers, STRING_REGISTERS, DataType.STRING)
        try:
            raw = pack(*registers)
        except struct.error as exc:
            raise CodecError(f"string: registers {list(registers)} are not 0-65535") from exc
        return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")

    return decode_string


def _encode_bool(value: Any) -> Registers:
    return (1 if value else 0,)


def _decode_bool(registers: Sequence[int]) -> bool:
    _check_count(registers, 1, DataType.BOOL)
    return bool(registers[0])


def _check_count(registers: Sequence[int], count: int, data_type: DataType) -> None:
    if len(registers) != count:
        raise CodecError(f"{data_type.value} needs {count} registers, got {len(registers)}")


def encoder(
    data_type: DataType | str,
    byte_order: ByteOrder | str = ByteOrder.BIG,
    word_order: ByteOrder | str = ByteOrder.BIG,
) -> Encoder:
    """A compiled ``value -> registers`` function for one type and byte/word order.

    The returned function raises ``struct.error`` (uint types: not an int or out of
    range) or ``OverflowError`` (float32 out of range); :func:`encode` wraps those
    in :class:`CodecError`.
    """
    dtype = DataType(data_type)
    if dtype is DataType.STRING:
        return _string_encoder(byte_order)
    if dtype is DataType.BOOL:
        return _encode_bool
    value_struct, register_struct = _numeric_structs(dtype, byte_order, word_order)
    pack, unpack = value_struct.pack, register_struct.unpack

    def encode_numeric(value: Any) -> Registers:
        return unpack(pack(value))

    return encode_numeric


def decoder(
    data_type: DataType | str,
    byte_order: ByteOrder | str = ByteOrder.BIG,
    word_order: ByteOrder | str = ByteOrder.BIG,
) -> Decoder:
    """A compiled ``registers -> value`` function (inverse of :func:`encoder`)."""
    dtype = DataType(data_type)
    if dtype is DataType.STRING:
        return _string_decoder(byte_order)
    if dtype is DataType.BOOL:
        return _decode_bool
    value_struct, register_struct = _numeric_structs(dtype, byte_order, word_order)
    pack, unpack = register_struct.pack, value_struct.unpack
    count = _NUMERIC[dtype][1]

    def decode_numeric(registers: Sequence[int]) -> Any:
        _check_count(registers, count, dtype)
        try:
            return unpack(pack(*registers))[0]
        except struct.error as exc:
            raise CodecError(f"{dtype.value}: registers {list(registers)} are not 0-65535") from exc

    return decode_numeric


def encode(
    value: Any,
    data_type: DataType | str,
    byte_order: ByteOrder | str = ByteOrder.BIG,
    word_order: ByteOrder | str = ByteOrder.BIG,
) -> list[int]:
    """Registers (0-65535 each) that hold ``value`` as ``data_type``."""
    try:
        return list(encoder(data_type, byte_order, word_order)(value))
    except (struct.error, OverflowError) as exc:
        raise CodecError(f"cannot encode {value!r} as {DataType(data_type).value}: {exc}") from exc


def decode(
    registers: Sequence[int],
    data_type: DataType | str,
    byte_order: ByteOrder | str = ByteOrder.BIG,
    word_order: ByteOrder | str = ByteOrder.BIG,
) -> Any:
    """The value ``registers`` hold as ``data_type`` (int, float, str or bool)."""
    return decoder(data_type, byte_order, word_order)(registers)
