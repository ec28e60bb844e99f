"""The tag catalogue: which model signal each face serves, and where.

This is the one place that decides OPC UA node ids and Modbus addresses, so the
two faces, ``plc-sim tags`` and docs/simulators.md always agree. Pure.

Modbus register map of one machine (its own unit id):

=================  =======  =====================================================
table              address  content
=================  =======  =====================================================
holding register   0        state code (canonical or PackML), uint16
holding register   1        stop reason code, uint16
holding register   2-3      total count (uint32: 2 registers; uint16: register 2)
holding register   4-5      good count
holding register   6-7      scrap count
holding register   8-9      ideal cycle time of the current product, ms, uint32
holding register   10-25    order id, ASCII, 32 chars, 2 per register
holding register   26-41    product id, ASCII, 32 chars
input register     0...     process values in declaration order, then analog
                            channels: float32 = 2 registers, float64 = 4
coil               0        write 1 to reset the counters (reads back 0)
discrete input     0-6      one bit per canonical state: running, idle, starved,
                            blocked, planned_stop, unplanned_stop, changeover
=================  =======  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from simulators.model.counters import CounterWidth
from simulators.model.machine import SignalValue
from simulators.model.process_values import channels_for
from simulators.model.states import MachineState
from simulators.scenario.models import Machine, ValueType

STRING_REGISTERS = 16  # 32 ASCII characters
STATE_BITS: tuple[MachineState, ...] = tuple(MachineState)


class DataType(StrEnum):
    BOOL = "bool"
    UINT16 = "uint16"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"

    @property
    def registers(self) -> int:
        return {"uint32": 2, "float32": 2, "float64": 4, "string": STRING_REGISTERS}.get(
            self.value, 1
        )


class Table(StrEnum):
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING_REGISTER = "holding_register"
    INPUT_REGISTER = "input_register"

    @property
    def short(self) -> str:
        return {
            "coil": "coil",
            "discrete_input": "DI",
            "holding_register": "HR",
            "input_register": "IR",
        }[self.value]


@dataclass(frozen=True)
class ModbusLocation:
    unit_id: int
    table: Table
    address: int
    count: int

    def render(self) -> str:
        last = self.address + self.count - 1
        span = f"{self.address}" if self.count == 1 else f"{self.address}-{last}"
        return f"unit {self.unit_id} {self.table.short} {span}"


@dataclass(frozen=True)
class TagSpec:
    machine: str
    name: str  # browse name on OPC UA, e.g. "TotalCount" or "ProcessValues.temperature"
    signal: str  # key into MachineModel.signals(), "state_bit.<state>" or "command.<name>"
    data_type: DataType
    opcua_id: str | None  # string node id (namespace given by the URI); None: not on OPC UA
    modbus: ModbusLocation | None
    unit: str = ""
    writable: bool = False

    @property
    def is_command(self) -> bool:
        return self.signal.startswith("command.")


def opcua_path(machine: Machine) -> list[str]:
    loc = machine.location
    return [loc.site, loc.area, loc.line, machine.name]


def opcua_node_id(machine: Machine, name: str) -> str:
    return ".".join([*opcua_path(machine), name])


def machine_tags(machine: Machine) -> list[TagSpec]:
    """Every tag of one machine, in register order."""
    unit = machine.modbus.unit_id
    counter_type = (
        DataType.UINT32 if machine.counter_width is CounterWidth.UINT32 else DataType.UINT16
    )

    def tag(
        name: str,
        signal: str,
        dtype: DataType,
        table: Table | None,
        address: int,
        count: int | None = None,
        unit_name: str = "",
        opcua: bool = True,
        writable: bool = False,
    ) -> TagSpec:
        location = None
        if table is not None:
            location = ModbusLocation(unit, table, address, count or dtype.registers)
        return TagSpec(
            machine.name,
            name,
            signal,
            dtype,
            opcua_node_id(machine, name) if opcua else None,
            location,
            unit_name,
            writable,
        )

    hr = Table.HOLDING_REGISTER
    tags = [
        tag("State", "state", DataType.UINT16, hr, 0),
        tag("StateName", "state_name", DataType.STRING, None, 0),
        tag("Reason", "reason", DataType.UINT16, hr, 1),
        tag("TotalCount", "total", counter_type, hr, 2),
        tag("GoodCount", "good", counter_type, hr, 4),
        tag("ScrapCount", "scrap", counter_type, hr, 6),
        tag("IdealCycleTime", "ideal_cycle_time_s", DataType.FLOAT64, None, 0, unit_name="s"),
        tag(
            "IdealCycleTimeMs",
            "ideal_cycle_time_ms",
            DataType.UINT32,
            hr,
            8,
            unit_name="ms",
            opcua=False,
        ),
        tag("Order", "order", DataType.STRING, hr, 10),
        tag("Product", "product", DataType.STRING, hr, 10 + STRING_REGISTERS),
        tag("ResetCounters", "command.reset_counters", DataType.BOOL, Table.COIL, 0, writable=True),
    ]
    for bit, state in enumerate(STATE_BITS):
        tags.append(
            tag(
                f"Is_{state.value}",
                f"state_bit.{state.value}",
                DataType.BOOL,
                Table.DISCRETE_INPUT,
                bit,
                opcua=False,
            )
        )
    address = 0
    for channel in channels_for(machine, seed=0):
        dtype = DataType.FLOAT64 if channel.type is ValueType.FLOAT64 else DataType.FLOAT32
        tags.append(
            tag(
                f"ProcessValues.{channel.name}",
                channel.signal,
                dtype,
                Table.INPUT_REGISTER,
                address,
                unit_name=channel.unit,
            )
        )
        address += dtype.registers
    return tags


def value_of(tag: TagSpec, signals: dict[str, SignalValue]) -> SignalValue:
    """The value ``tag`` serves, given a machine's current signals."""
    direct = signals.get(tag.signal)
    if direct is not None:
        return direct
    if tag.signal.startswith("state_bit."):
        state = signals["state_name"]
        return SignalValue(state.value == tag.signal.removeprefix("state_bit."), state.changed_at)
    if tag.signal == "ideal_cycle_time_ms":
        ict = signals["ideal_cycle_time_s"]
        return SignalValue(round(ict.value * 1000), ict.changed_at)
    if tag.is_command:
        return SignalValue(False, signals["state"].changed_at)
    raise KeyError(f"{tag.machine}: no signal {tag.signal!r} for tag {tag.name!r}")


def python_type_default(tag: TagSpec) -> Any:
    return {DataType.BOOL: False, DataType.STRING: ""}.get(tag.data_type, 0)
