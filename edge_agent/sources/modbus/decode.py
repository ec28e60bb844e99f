"""Modbus registers and bits -> tag values. Pure (struct and operator only).

Layout rules (the simulator's ``simulators/faces/modbus/codec.py`` serves the same):

* ``byte_order`` is the order of the two bytes inside each register: ``big`` puts the
  most significant byte in the register's high byte (Modbus' own convention).
* ``word_order`` is the order of the registers of a multi-register value: ``big``
  sends the most significant register first (all four registers of a 64-bit value
  are reversed when ``little``).
* float32 123.456 (0x42F6E979) is ``[0x42F6, 0xE979]`` big/big, ``[0xE979, 0x42F6]``
  big/little, ``[0xF642, 0x79E9]`` little/big and ``[0x79E9, 0xF642]`` little/little.
* ``string``: ``length`` registers, two characters each, the first in the high byte
  unless ``byte_order`` is little; cut at the first NUL; ``word_order`` does not apply.
* ``bool`` in a register table: one register, true when not 0.
* ``scale``/``offset`` apply to numbers: ``raw * scale + offset`` (a float unless
  both are neutral, then the raw int stays an int).

Every layout is a plain struct read of one of two byte streams made from a response:
the registers packed big-endian (B) or little-endian (L, every register's bytes
swapped). big/big is B read ``>``, little/little is B read ``<``, big/little is L read
``<`` and little/big is L read ``>``. So a request span whose tags share one layout
(the usual case: one PLC, one convention) decodes with a single ``pack`` and a single
``unpack_from``; a span that mixes layouts needs one ``unpack_from`` per layout.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.config.models import ModbusAddress, ModbusTable, ModbusType, Order

BIT_TABLES = frozenset({ModbusTable.COIL, ModbusTable.DISCRETE_INPUT})

# struct code and width in registers of every fixed-size type
_FIXED: dict[ModbusType, tuple[str, int]] = {
    ModbusType.BOOL: ("H", 1),
    ModbusType.INT16: ("h", 1),
    ModbusType.UINT16: ("H", 1),
    ModbusType.INT32: ("i", 2),
    ModbusType.UINT32: ("I", 2),
    ModbusType.FLOAT32: ("f", 2),
    ModbusType.INT64: ("q", 4),
    ModbusType.UINT64: ("Q", 4),
    ModbusType.FLOAT64: ("d", 4),
}


class ModbusSourceError(Exception):
    """Base class of every error the Modbus source raises."""


class DecodeError(ModbusSourceError, ValueError):
    """A response does not hold what the request asked for (wrong length)."""


@dataclass(frozen=True, slots=True)
class Slot:
    """One tag inside a read request: where its value starts and how to decode it."""

    tag: str
    offset: int
    """Registers (register tables) or bits (bit tables) from the start of the request."""
    address: ModbusAddress

    @property
    def width(self) -> int:
        return value_width(self.address)


def value_width(address: ModbusAddress) -> int:
    """Registers a value occupies, or 1 (bit) in the coil and discrete input tables."""
    if address.table in BIT_TABLES:
        return 1
    if address.type is ModbusType.STRING:
        assert address.length is not None  # the config model guarantees it
        return address.length
    return _FIXED[address.type][1]


def _layout(address: ModbusAddress) -> tuple[bool, str]:
    """(read the byte-swapped stream L?, struct endianness) of a register value."""
    if address.type is ModbusType.STRING:
        return address.byte_order is Order.LITTLE, ">"
    if value_width(address) == 1:  # word order does not apply to one register
        return False, ">" if address.byte_order is Order.BIG else "<"
    swap = address.byte_order is not address.word_order
    return swap, ">" if address.word_order is Order.BIG else "<"


def _struct_code(address: ModbusAddress) -> str:
    if address.type is ModbusType.STRING:
        return f"{2 * value_width(address)}s"
    return _FIXED[address.type][0]


def _decode_text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")


def _post(address: ModbusAddress) -> Callable[[Any], Any] | None:
    """What turns the struct result into the tag value, None when nothing does."""
    if address.type is ModbusType.STRING:
        return _decode_text
    if address.type is ModbusType.BOOL:
        return bool
    scale, offset = address.scale, address.offset
    if scale == 1.0 and offset == 0.0:
        return None
    return lambda raw: raw * scale + offset


@dataclass(frozen=True, slots=True)
class _Part:
    swap: bool  # unpack from the byte-swapped stream
    unpack_from: Callable[[Any, int], tuple[Any, ...]]
    start_byte: int
    positions: tuple[int, ...]  # where each unpacked value goes in the result


class RegisterSpanDecoder:
    """Decodes every tag of one register request; compiled once, used every poll."""

    def __init__(self, slots: Sequence[Slot], count: int) -> None:
        self.count = count
        self._size = len(slots)
        self._pack_big = struct.Struct(f">{count}H").pack
        self._pack_little = struct.Struct(f"<{count}H").pack
        self._parts = _compile_parts(slots)
        self._posts = tuple(
            (index, post)
            for index, slot in enumerate(slots)
            if (post := _post(slot.address)) is not None
        )
        only = self._parts[0] if len(self._parts) == 1 else None
        self._in_order = only is not None and only.positions == tuple(range(self._size))

    def decode(self, registers: Sequence[int]) -> list[Any]:
        """Values in slot order. Raises :class:`DecodeError` on a wrong register count."""
        if len(registers) != self.count:
            raise DecodeError(f"expected {self.count} registers, the response has {len(registers)}")
        try:
            if self._in_order:
                part = self._parts[0]
                data = (self._pack_little if part.swap else self._pack_big)(*registers)
                values = list(part.unpack_from(data, part.start_byte))
            else:
                values = self._decode_parts(registers)
        except struct.error as exc:
            raise DecodeError(f"registers are not 16-bit values: {exc}") from exc
        for index, post in self._posts:
            values[index] = post(values[index])
        return values

    def _decode_parts(self, registers: Sequence[int]) -> list[Any]:
        streams: dict[bool, bytes] = {}
        values: list[Any] = [None] * self._size
        for part in self._parts:
            data = streams.get(part.swap)
            if data is None:
                pack = self._pack_little if part.swap else self._pack_big
                data = streams[part.swap] = pack(*registers)
            unpacked = part.unpack_from(data, part.start_byte)
            for position, value in zip(part.positions, unpacked, strict=True):
                values[position] = value
        return values


def _compile_parts(slots: Sequence[Slot]) -> tuple[_Part, ...]:
    """Group slots by layout, then into layers without overlap: one struct each."""
    groups: dict[tuple[bool, str], list[int]] = {}
    strings: list[int] = []
    for index, slot in enumerate(slots):
        if slot.address.type is ModbusType.STRING:
            strings.append(index)
        else:
            groups.setdefault(_layout(slot.address), []).append(index)
    for index in strings:  # a string's endianness is free: join a group on its stream
        swap = _layout(slots[index].address)[0]
        key = next((k for k in groups if k[0] is swap), (swap, ">"))
        groups.setdefault(key, []).append(index)

    parts: list[_Part] = []
    for (swap, endian), members in groups.items():
        layers: list[tuple[int, list[int]]] = []  # (end offset, members) per layer
        for index in sorted(members, key=lambda i: (slots[i].offset, i)):
            slot = slots[index]
            for number, (end, layer) in enumerate(layers):
                if end <= slot.offset:
                    layer.append(index)
                    layers[number] = (slot.offset + slot.width, layer)
                    break
            else:
                layers.append((slot.offset + slot.width, [index]))
        for _, layer in layers:
            parts.append(_compile_layer(slots, layer, swap, endian))
    return tuple(parts)


def _compile_layer(slots: Sequence[Slot], layer: list[int], swap: bool, endian: str) -> _Part:
    start = slots[layer[0]].offset
    codes: list[str] = []
    cursor = start
    for index in layer:
        slot = slots[index]
        if slot.offset > cursor:
            codes.append(f"{2 * (slot.offset - cursor)}x")
        codes.append(_struct_code(slot.address))
        cursor = slot.offset + slot.width
    compiled = struct.Struct(endian + "".join(codes))
    return _Part(swap, compiled.unpack_from, 2 * start, tuple(layer))


class BitSpanDecoder:
    """Decodes every tag of one coil or discrete input request."""

    def __init__(self, slots: Sequence[Slot], count: int) -> None:
        self.count = count
        self._single = len(slots) == 1
        self._get = operator.itemgetter(*(slot.offset for slot in slots))

    def decode(self, bits: Sequence[bool]) -> list[Any]:
        """Values in slot order; pymodbus pads bits to a multiple of 8 (ignored)."""
        if len(bits) < self.count:
            raise DecodeError(f"expected {self.count} bits, the response has {len(bits)}")
        if self._single:
            return [bool(self._get(bits))]
        return [bool(bit) for bit in self._get(bits)]


SpanDecoder = RegisterSpanDecoder | BitSpanDecoder


def span_decoder(table: ModbusTable, slots: Sequence[Slot], count: int) -> SpanDecoder:
    """The compiled decoder of a request over ``count`` registers or bits of ``table``."""
    if not slots:
        raise ValueError("a request without tags has nothing to decode")
    if table in BIT_TABLES:
        return BitSpanDecoder(slots, count)
    return RegisterSpanDecoder(slots, count)


def decode_value(words: Sequence[int] | Sequence[bool], address: ModbusAddress) -> Any:
    """One value from exactly the registers (or the bit) it occupies. Convenience, slow."""
    slot = Slot("value", 0, address)
    return span_decoder(address.table, [slot], value_width(address)).decode(words)[0]  # type: ignore[arg-type]
