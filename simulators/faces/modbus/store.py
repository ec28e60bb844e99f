"""The register image of every simulated machine, as pymodbus' request PDUs see it.

One :class:`UnitImage` per machine (its own unit id) holds the four Modbus tables
as plain Python lists laid out by the tag catalogue (``simulators/tags.py``):
addresses inside a table's map that no tag uses read 0, reads past the map get
exception 2. :meth:`RegisterStore.apply` writes changed tags with one compiled
codec call each; :class:`RegisterStore` also implements the datastore interface
pymodbus' PDUs call (``async_getValues`` / ``async_setValues`` / ``device_ids``).

Writes: coil 0 of a unit is the "reset counters" command (writing 1 calls the
``on_reset`` callback, the coil stays 0); every register write (function codes
6, 16, 22, 23) is refused with exception 2 (illegal data address): the map has
no writable register. Input registers and discrete inputs cannot be written by
any Modbus function.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException

from simulators.faces.modbus.codec import Encoder, encoder
from simulators.runtime import TagUpdate
from simulators.scenario.models import Machine
from simulators.tags import DataType, ModbusLocation, Table, TagSpec

log = logging.getLogger("lineside.sim.modbus")

# Modbus function code -> the table it reads or writes
READ_TABLES: dict[int, Table] = {
    1: Table.COIL,
    2: Table.DISCRETE_INPUT,
    3: Table.HOLDING_REGISTER,
    4: Table.INPUT_REGISTER,
}
COIL_WRITES = frozenset({5, 15})
REGISTER_WRITES = frozenset({6, 16, 22, 23})
RESET_COIL = 0

# TagSpec.signal of the coil that resets the counters
RESET_SIGNAL = "command.reset_counters"


@dataclass
class UnitImage:
    """The four tables of one machine (one Modbus unit id)."""

    machine: str
    unit_id: int
    tables: dict[Table, list[int]]  # coils and discrete inputs hold 0/1
    encoders: dict[DataType, Encoder]
    reset_coils: frozenset[int] = field(default_factory=frozenset)


def build_unit_image(machine: Machine, tags: Sequence[TagSpec]) -> UnitImage:
    """An all-zero image sized to the catalogue map of ``machine``."""
    sizes = dict.fromkeys(Table, 0)
    reset_coils = set()
    for tag in tags:
        loc = tag.modbus
        if loc is None:
            continue
        if loc.count != tag.data_type.registers:
            raise ValueError(
                f"tag {machine.name}.{tag.name}: {tag.data_type.value} needs "
                f"{tag.data_type.registers} registers, the catalogue gives {loc.count}"
            )
        sizes[loc.table] = max(sizes[loc.table], loc.address + loc.count)
        if tag.signal == RESET_SIGNAL:
            reset_coils.add(loc.address)
    order = machine.modbus
    return UnitImage(
        machine=machine.name,
        unit_id=order.unit_id,
        tables={table: [0] * size for table, size in sizes.items()},
        encoders={dt: encoder(dt, order.byte_order, order.word_order) for dt in DataType},
        reset_coils=frozenset(reset_coils),
    )


class RegisterStore:
    """Register images of all machines; the datastore behind the pymodbus server."""

    def __init__(
        self,
        machines: Iterable[Machine],
        tags: dict[str, list[TagSpec]],
        on_reset: Callable[[str], None],
    ) -> None:
        self.units: dict[int, UnitImage] = {}
        self.locations: dict[tuple[str, str], ModbusLocation] = {}
        for machine in machines:
            self.units[machine.modbus.unit_id] = build_unit_image(machine, tags[machine.name])
            for tag in tags[machine.name]:
                if tag.modbus is not None:
                    self.locations[(machine.name, tag.name)] = tag.modbus
        self._on_reset = on_reset

    # -- the simulation side ---------------------------------------------------------

    def apply(self, updates: Sequence[TagUpdate]) -> None:
        """Write changed tag values into their registers/bits (hot path)."""
        units = self.units
        for update in updates:
            tag = update.tag
            loc = tag.modbus
            if loc is None:
                continue
            image = units[loc.unit_id]
            address = loc.address
            # bools encode to (0,) / (1,): the same slice write serves coils and inputs
            encode = image.encoders[tag.data_type]
            try:
                registers = encode(update.value.value)
            except (struct.error, OverflowError, TypeError):
                # a model bug must not stop the simulation: keep serving the last value
                log.error(
                    "modbus cannot encode tag=%s.%s type=%s value=%r",
                    tag.machine,
                    tag.name,
                    tag.data_type.value,
                    update.value.value,
                )
                continue
            image.tables[loc.table][address : address + loc.count] = registers

    def covering_tags(
        self, unit_id: int, table: Table, address: int, count: int, keys: Iterable[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Which of ``keys`` (machine, tag) lie (partly) inside the requested range."""
        out = []
        end = address + count
        for key in keys:
            loc = self.locations.get(key)
            if (
                loc is not None
                and loc.unit_id == unit_id
                and loc.table is table
                and loc.address < end
                and address < loc.address + loc.count
            ):
                out.append(key)
        return out

    # -- the pymodbus datastore interface ----------------------------------------------

    def device_ids(self) -> list[int]:
        return sorted(self.units)

    def _unit(self, device_id: int) -> UnitImage:
        image = self.units.get(device_id)
        if image is None:
            raise NoSuchIdException(f"device_id - {device_id} does not exist")
        return image

    # camelCase names: pymodbus' datastore interface
    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        """Values of a read; for a coil write pymodbus reads the coil back (fc 5)."""
        image = self._unit(device_id)
        table_name = Table.COIL if func_code in COIL_WRITES else READ_TABLES.get(func_code)
        if table_name is None:
            return ExcCodes.ILLEGAL_FUNCTION
        table = image.tables[table_name]
        if address < 0 or count < 1 or address + count > len(table):
            return ExcCodes.ILLEGAL_ADDRESS
        values = table[address : address + count]
        if table_name in (Table.COIL, Table.DISCRETE_INPUT):
            return [bool(v) for v in values]
        return values

    async def async_setValues(
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> ExcCodes | None:
        """A write: coil 0 = reset counters; register writes are refused."""
        image = self._unit(device_id)
        if func_code in REGISTER_WRITES:
            return ExcCodes.ILLEGAL_ADDRESS
        if func_code not in COIL_WRITES:
            return ExcCodes.ILLEGAL_FUNCTION
        coils = image.tables[Table.COIL]
        if address < 0 or not values or address + len(values) > len(coils):
            return ExcCodes.ILLEGAL_ADDRESS
        for offset, value in enumerate(values):
            if not value:
                continue
            coil = address + offset
            if coil in image.reset_coils:
                self._on_reset(image.machine)  # a command: the coil reads back 0
            else:
                coils[coil] = 1
        return None
