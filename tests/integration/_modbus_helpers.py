"""Helpers for the Modbus face tests: deadline polling, a pty serial link, readers."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
import tty
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU

from simulators.faces.modbus.codec import decode
from simulators.model.clock import ManualClock
from simulators.model.truth import TruthWriter, read_truth
from simulators.runtime import Simulation
from simulators.scenario.models import Machine, Scenario
from simulators.tags import STATE_BITS, DataType

HOLDING_MAP = 42  # registers 0-41
STATE_INPUTS = len(STATE_BITS)

Predicate = Callable[[], bool | Awaitable[bool]]


async def wait_until(predicate: Predicate, timeout_s: float, interval_s: float = 0.01) -> None:
    """Poll ``predicate`` (sync or async) until true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout_s} s: {predicate}")
        await asyncio.sleep(interval_s)


@dataclass
class SimBundle:
    """A simulation on a manual clock with its ground-truth log."""

    sim: Simulation
    clock: ManualClock
    start: datetime
    truth_path: Path | None

    def advance_to(self, seconds_after_start: float) -> None:
        """Move the clock to ``start + seconds`` and step the simulation there."""
        self.clock.set(self.start + timedelta(seconds=seconds_after_start))
        self.sim.step()

    def truth(self) -> list[dict[str, Any]]:
        assert self.truth_path is not None
        return read_truth(self.truth_path)


def build_sim(scenario: Scenario, start: datetime, truth_path: Path | None) -> SimBundle:
    clock = ManualClock(start)
    truth = TruthWriter(truth_path) if truth_path is not None else None
    return SimBundle(Simulation(scenario, clock, start, truth=truth), clock, start, truth_path)


def last_record(
    records: list[dict[str, Any]], machine: str, types: tuple[str, ...]
) -> dict[str, Any] | None:
    """The latest truth record of ``machine`` with one of ``types``."""
    found = None
    for record in records:
        if record.get("machine") == machine and record["type"] in types:
            found = record
    return found


def tcp_client(port: int, timeout_s: float = 1.0) -> AsyncModbusTcpClient:
    """A client that neither retries nor reconnects by itself (faults stay visible)."""
    return AsyncModbusTcpClient(
        "127.0.0.1", port=port, timeout=timeout_s, retries=0, reconnect_delay=0
    )


def ok(response: ModbusPDU) -> ModbusPDU:
    assert not response.isError(), f"unexpected error response {response}"
    return response


@dataclass
class UnitReading:
    """Everything one unit serves, decoded with the machine's byte/word order."""

    holding: list[int]
    inputs: list[int]
    discrete: list[bool]
    coil: bool
    machine: Machine

    def value(self, table: list[int], address: int, dtype: DataType | str) -> Any:
        count = DataType(dtype).registers
        order = self.machine.modbus
        return decode(table[address : address + count], dtype, order.byte_order, order.word_order)


async def read_unit(
    client: AsyncModbusTcpClient | AsyncModbusSerialClient, machine: Machine, input_count: int
) -> UnitReading:
    unit = machine.modbus.unit_id
    holding = ok(await client.read_holding_registers(0, count=HOLDING_MAP, device_id=unit))
    inputs: list[int] = []
    if input_count:
        reply = await client.read_input_registers(0, count=input_count, device_id=unit)
        inputs = list(ok(reply).registers)
    discrete = ok(await client.read_discrete_inputs(0, count=STATE_INPUTS, device_id=unit))
    coil = ok(await client.read_coils(0, count=1, device_id=unit))
    return UnitReading(
        list(holding.registers),
        inputs,
        list(discrete.bits[:STATE_INPUTS]),
        bool(coil.bits[0]),
        machine,
    )


# -- a serial line made of two pseudo-terminals ---------------------------------------------


@dataclass
class SerialLink:
    """Two device paths joined like a null-modem cable (server end, client end)."""

    server_path: str
    client_path: str


@asynccontextmanager
async def pty_serial_link() -> AsyncIterator[SerialLink]:
    """Two pty pairs whose masters are bridged by the event loop (no socat).

    The slave ends are put in raw mode (no echo, no line editing, 8-bit clean) and
    kept open here, so the masters never see EIO while pyserial opens and closes them.
    """
    loop = asyncio.get_running_loop()
    master_a, slave_a = os.openpty()
    master_b, slave_b = os.openpty()
    fds = (master_a, slave_a, master_b, slave_b)
    for slave in (slave_a, slave_b):
        tty.setraw(slave)
    for master in (master_a, master_b):
        os.set_blocking(master, False)

    def relay(source: int, target: int) -> None:
        try:
            data = os.read(source, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: no slave open right now
            return
        if data:
            os.write(target, data)

    loop.add_reader(master_a, relay, master_a, master_b)
    loop.add_reader(master_b, relay, master_b, master_a)
    try:
        yield SerialLink(os.ttyname(slave_a), os.ttyname(slave_b))
    finally:
        loop.remove_reader(master_a)
        loop.remove_reader(master_b)
        for fd in fds:
            os.close(fd)


def serial_client(path: str, timeout_s: float = 1.0) -> AsyncModbusSerialClient:
    return AsyncModbusSerialClient(
        path, baudrate=19200, timeout=timeout_s, retries=0, reconnect_delay=0
    )
