"""The Modbus face against real pymodbus clients on loopback (and over a pty pair)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from _modbus_helpers import (
    HOLDING_MAP,
    SimBundle,
    UnitReading,
    build_sim,
    last_record,
    ok,
    pty_serial_link,
    read_unit,
    serial_client,
    tcp_client,
    wait_until,
)
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from simulators.faces.modbus import ModbusFace
from simulators.faults.state import BadTag, FaultState
from simulators.model.counters import CounterWidth
from simulators.runtime import Simulation, default_start
from simulators.scenario.loader import load_scenario, parse_scenario
from simulators.tags import STATE_BITS, DataType, Table

pytestmark = pytest.mark.integration

LINE3 = load_scenario("line-3-machines")
A_MONDAY = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# 06:30 all running; 07:25 press down, weld and pack starved; 09:05 everyone on break
CHECKPOINTS_S = (30 * 60, 85 * 60, 3 * 3600 + 5 * 60)


@dataclass
class Served:
    bundle: SimBundle
    face: ModbusFace

    @property
    def sim(self) -> Simulation:
        return self.bundle.sim


@pytest.fixture
async def line3(tmp_path) -> AsyncIterator[Served]:
    bundle = build_sim(LINE3, default_start(LINE3, A_MONDAY), tmp_path / "truth.jsonl")
    face = ModbusFace(bundle.sim, port=0, faults=FaultState())
    bundle.sim.subscribe(face.apply)
    await face.start()
    try:
        yield Served(bundle, face)
    finally:
        await face.stop()
        bundle.sim.close()


@pytest.fixture
async def client(line3: Served) -> AsyncIterator[AsyncModbusTcpClient]:
    tcp = tcp_client(line3.face.port)
    assert await tcp.connect()
    try:
        yield tcp
    finally:
        tcp.close()


def input_registers(sim: Simulation, machine: str) -> int:
    return sum(
        t.modbus.count
        for t in sim.tags[machine]
        if t.modbus is not None and t.modbus.table is Table.INPUT_REGISTER
    )


async def read_machine(
    modbus: AsyncModbusTcpClient | AsyncModbusSerialClient, sim: Simulation, machine: str
) -> UnitReading:
    return await read_unit(modbus, sim.machine_configs[machine], input_registers(sim, machine))


def counters_of(reading: UnitReading) -> tuple[int, int, int]:
    wide = reading.machine.counter_width is CounterWidth.UINT32
    dtype = DataType.UINT32 if wide else DataType.UINT16
    total, good, scrap = (reading.value(reading.holding, a, dtype) for a in (2, 4, 6))
    return total, good, scrap


def check_against_truth(reading: UnitReading, served: Served) -> None:
    """Every served value of one machine matches the ground-truth log / the model."""
    name = reading.machine.name
    records = served.bundle.truth()
    holding = reading.holding

    state = last_record(records, name, ("state",))
    assert state is not None
    assert reading.value(holding, 0, DataType.UINT16) == state["code"], name
    assert reading.value(holding, 1, DataType.UINT16) == state["reason"], name
    assert reading.discrete == [s.value == state["to"] for s in STATE_BITS], name
    assert reading.coil is False

    counted = last_record(records, name, ("part", "counter_reset"))
    assert counted is not None
    expected = (0, 0, 0)
    if counted["type"] == "part":
        expected = (counted["total"], counted["good_count"], counted["scrap_count"])
    assert counters_of(reading) == expected, name
    if reading.machine.counter_width is CounterWidth.UINT16:
        assert holding[3] == holding[5] == holding[7] == 0  # unused second registers

    order = last_record(records, name, ("order",))
    assert order is not None
    ideal_ms = round(order["ideal_cycle_time_s"] * 1000)
    assert reading.value(holding, 8, DataType.UINT32) == ideal_ms
    assert reading.value(holding, 10, DataType.STRING) == order["order"]
    assert reading.value(holding, 26, DataType.STRING) == order["product"]

    signals = served.sim.machines[name].signals(served.bundle.clock.now())
    for tag in served.sim.tags[name]:
        if tag.modbus is None or tag.modbus.table is not Table.INPUT_REGISTER:
            continue
        served_value = reading.value(reading.inputs, tag.modbus.address, tag.data_type)
        model_value = signals[tag.signal].value
        if tag.data_type is DataType.FLOAT64:
            assert served_value == model_value, tag.name
        else:  # float32 on the wire: ~7 significant digits
            assert math.isclose(served_value, model_value, rel_tol=1e-6, abs_tol=1e-9), tag.name


# -- (a) the register map follows the simulation ----------------------------------------------


async def test_every_block_of_every_unit_follows_the_ground_truth(
    line3: Served, client: AsyncModbusTcpClient
) -> None:
    seen_states: set[int] = set()
    for offset_s in CHECKPOINTS_S:
        line3.bundle.advance_to(offset_s)
        for name in line3.sim.machine_configs:
            reading = await read_machine(client, line3.sim, name)
            check_against_truth(reading, line3)
            seen_states.add(reading.value(reading.holding, 0, DataType.UINT16))
    press = await read_machine(client, line3.sim, "press-1")
    assert counters_of(press)[0] > 1000  # the checks above saw real production
    assert len(seen_states) >= 4  # running, stops, starved and breaks were all on the wire


async def test_raw_registers_follow_each_machines_byte_and_word_order(
    line3: Served, client: AsyncModbusTcpClient
) -> None:
    line3.bundle.advance_to(30 * 60)  # all three running order 9001

    async def raw(unit: int, address: int, count: int) -> list[int]:
        reply = ok(await client.read_holding_registers(address, count=count, device_id=unit))
        return list(reply.registers)

    # press-1 big/big canonical: state 1, ideal 3000 ms high word first, "9001" = "90" "01"
    assert await raw(1, 0, 1) == [1]
    assert await raw(1, 8, 4) == [0, 3000, 0x3930, 0x3031]
    # weld-1 big/little PackML: Execute = 6, ideal 2800 ms low word first
    assert await raw(2, 0, 1) == [6]
    assert await raw(2, 8, 4) == [2800, 0, 0x3930, 0x3031]
    # pack-1 little/little: every register byte-swapped, low word first
    assert await raw(3, 0, 1) == [0x0100]
    assert await raw(3, 8, 4) == [0xC409, 0, 0x3039, 0x3130]


async def test_map_edges_and_refused_writes(line3: Served, client: AsyncModbusTcpClient) -> None:
    def exception_code(reply: ModbusPDU) -> int:
        assert reply.isError(), reply
        return reply.exception_code

    ok(await client.read_holding_registers(HOLDING_MAP - 1, count=1, device_id=1))
    assert exception_code(await client.read_holding_registers(41, count=2, device_id=1)) == 2
    assert exception_code(await client.read_holding_registers(100, count=1, device_id=1)) == 2
    press_inputs = input_registers(line3.sim, "press-1")
    ok(await client.read_input_registers(0, count=press_inputs, device_id=1))
    reply = await client.read_input_registers(0, count=press_inputs + 1, device_id=1)
    assert exception_code(reply) == 2
    assert exception_code(await client.read_discrete_inputs(0, count=8, device_id=2)) == 2
    assert exception_code(await client.read_coils(1, count=1, device_id=3)) == 2
    # unknown unit on TCP: gateway target failed to respond
    assert exception_code(await client.read_holding_registers(0, count=1, device_id=9)) == 0x0B
    # the register map is read-only; only coil 0 is writable
    assert exception_code(await client.write_register(0, 5, device_id=1)) == 2
    assert exception_code(await client.write_registers(2, [1, 2], device_id=1)) == 2
    assert exception_code(await client.write_coil(1, True, device_id=1)) == 2
    before = await read_machine(client, line3.sim, "press-1")
    assert before.holding[0] != 5


# -- (b) counter widths on the wire -----------------------------------------------------------

FAST_COUNTERS = """
scenario: fast-counters
timezone: UTC
start: 2026-03-02T06:00:00+00:00
machines:
  - name: wide
    location: {site: s1, area: a1, line: l1}
    counter_width: uint32
    scrap_rate: 0
    products: [{id: p, ideal_cycle_time_s: 0.001, jitter: 0}]
    modbus: {unit_id: 1}
    timeline: ["06:00 run p order 1"]
  - name: narrow
    location: {site: s1, area: a1, line: l1}
    counter_width: uint16
    scrap_rate: 0
    products: [{id: p, ideal_cycle_time_s: 0.001, jitter: 0}]
    modbus: {unit_id: 2}
    timeline: ["06:00 run p order 1"]
"""


async def test_uint32_counter_spans_two_registers_and_uint16_wraps() -> None:
    scenario = parse_scenario(FAST_COUNTERS)
    assert scenario.start is not None
    bundle = build_sim(scenario, scenario.start, None)
    face = ModbusFace(bundle.sim, port=0)
    bundle.sim.subscribe(face.apply)
    await face.start()
    tcp = tcp_client(face.port)
    try:
        assert await tcp.connect()

        async def total_registers(unit: int) -> list[int]:
            reply = ok(await tcp.read_holding_registers(2, count=2, device_id=unit))
            return list(reply.registers)

        bundle.advance_to(65.535)  # one part per millisecond
        assert await total_registers(2) == [65535, 0]
        assert await total_registers(1) == [0, 65535]
        bundle.advance_to(65.536)
        assert await total_registers(2) == [0, 0]  # wrapped
        assert await total_registers(1) == [1, 0]  # 65536: high word first
        bundle.advance_to(70.0)
        assert await total_registers(2) == [70000 - 65536, 0]
        assert await total_registers(1) == [70000 >> 16, 70000 & 0xFFFF]
        good = ok(await tcp.read_holding_registers(4, count=2, device_id=1)).registers
        assert list(good) == [1, 70000 & 0xFFFF]  # no scrap: good == total
    finally:
        tcp.close()
        await face.stop()


# -- (c) faults as a client sees them ---------------------------------------------------------


async def test_drop_connections_forces_a_reconnect(
    line3: Served, client: AsyncModbusTcpClient
) -> None:
    ok(await client.read_holding_registers(0, count=1, device_id=1))
    assert await line3.face.drop_connections() == 1
    await wait_until(lambda: not client.connected, timeout_s=2)
    with pytest.raises(ConnectionException):
        await client.read_holding_registers(0, count=1, device_id=1)
    assert await client.connect()
    ok(await client.read_holding_registers(0, count=1, device_id=1))
    assert await line3.face.drop_connections() == 1  # the reconnected client only


async def test_hang_times_out_requests_on_an_open_connection(
    line3: Served, client: AsyncModbusTcpClient
) -> None:
    faults = line3.face.faults
    faults.hang_until_mono = time.monotonic() + 1.2
    slow_client = tcp_client(line3.face.port, timeout_s=0.4)
    assert await slow_client.connect()
    try:
        started = time.monotonic()
        with pytest.raises(ModbusIOException):
            await slow_client.read_holding_registers(0, count=1, device_id=1)
        assert time.monotonic() - started >= 0.4
        assert slow_client.connected  # silence, not a disconnect
        await wait_until(lambda: faults.hang_remaining_s() == 0, timeout_s=3)
        ok(await slow_client.read_holding_registers(0, count=1, device_id=1))
        ok(await client.read_holding_registers(0, count=1, device_id=1))
    finally:
        slow_client.close()


async def test_slow_responses_are_delayed(line3: Served, client: AsyncModbusTcpClient) -> None:
    delay_s = 0.3
    line3.face.faults.delay_s = delay_s
    started = time.monotonic()
    ok(await client.read_holding_registers(0, count=10, device_id=2))
    assert time.monotonic() - started >= delay_s
    line3.face.faults.clear()
    started = time.monotonic()
    ok(await client.read_holding_registers(0, count=10, device_id=2))
    assert time.monotonic() - started < delay_s


async def test_bad_tag_fails_only_reads_that_cover_it(
    line3: Served, client: AsyncModbusTcpClient
) -> None:
    faults = line3.face.faults
    faults.bad_tags[("press-1", "GoodCount")] = BadTag(modbus_exception=4)  # registers 4-5
    faults.bad_tags[("weld-1", "Is_starved")] = BadTag(modbus_exception=3)  # input bit 2

    async def code(request: Awaitable[ModbusPDU]) -> int:
        reply = await request
        return reply.exception_code if reply.isError() else 0

    assert await code(client.read_holding_registers(0, count=HOLDING_MAP, device_id=1)) == 4
    assert await code(client.read_holding_registers(5, count=1, device_id=1)) == 4
    assert await code(client.read_holding_registers(3, count=2, device_id=1)) == 4
    assert await code(client.read_holding_registers(0, count=4, device_id=1)) == 0
    assert await code(client.read_holding_registers(6, count=36, device_id=1)) == 0
    assert await code(client.read_input_registers(0, count=4, device_id=1)) == 0
    assert await code(client.read_holding_registers(0, count=HOLDING_MAP, device_id=2)) == 0
    assert await code(client.read_discrete_inputs(0, count=7, device_id=2)) == 3
    assert await code(client.read_discrete_inputs(3, count=4, device_id=2)) == 0
    assert await code(client.read_discrete_inputs(0, count=7, device_id=1)) == 0

    # a fault with an end: reads fail until it expires, then work again
    faults.bad_tags[("press-1", "GoodCount")] = BadTag(until_mono=time.monotonic() + 0.3)
    assert await code(client.read_holding_registers(4, count=2, device_id=1)) == 4

    async def readable() -> bool:
        return await code(client.read_holding_registers(4, count=2, device_id=1)) == 0

    await wait_until(readable, timeout_s=2)
    assert ("press-1", "GoodCount") not in faults.bad_tags


async def test_restart_needs_a_reconnect_and_keeps_values(
    line3: Served, client: AsyncModbusTcpClient
) -> None:
    line3.bundle.advance_to(3600)
    before = await read_machine(client, line3.sim, "weld-1")
    port = line3.face.port
    restart = asyncio.create_task(line3.face.restart(downtime_s=0.8))
    await wait_until(lambda: not client.connected, timeout_s=2)
    during = tcp_client(port, timeout_s=0.2)
    assert not await during.connect()  # nobody listens during the downtime
    during.close()
    await restart
    assert line3.face.port == port
    with pytest.raises(ConnectionException):
        await client.read_holding_registers(0, count=1, device_id=2)
    assert await client.connect()
    after = await read_machine(client, line3.sim, "weld-1")
    assert after == before
    assert line3.face.endpoints() == [f"modbus-tcp://127.0.0.1:{port} (unit ids 1-3)"]


async def test_coil_0_resets_the_counters_as_a_command(
    line3: Served, client: AsyncModbusTcpClient
) -> None:
    line3.bundle.advance_to(3600)
    before = await read_machine(client, line3.sim, "press-1")
    weld_before = await read_machine(client, line3.sim, "weld-1")
    assert counters_of(before)[0] > 0

    reply = ok(await client.write_coil(0, True, device_id=1))
    assert reply.bits[0] is True  # the response echoes the request

    after = await read_machine(client, line3.sim, "press-1")
    assert counters_of(after) == (0, 0, 0)
    assert after.coil is False  # a command, not a latch
    assert await read_machine(client, line3.sim, "weld-1") == weld_before
    reset = last_record(line3.bundle.truth(), "press-1", ("counter_reset",))
    assert reset is not None
    assert reset["cause"] == "command"
    assert reset["ts"] == line3.bundle.clock.now()

    line3.bundle.advance_to(3600 + 120)  # production counts on from zero
    later = await read_machine(client, line3.sim, "press-1")
    assert 0 < counters_of(later)[0] < counters_of(before)[0]
    check_against_truth(later, line3)


# -- (d) RTU over a pseudo-terminal pair ------------------------------------------------------


async def test_rtu_over_a_pty_pair(tmp_path) -> None:
    bundle = build_sim(LINE3, default_start(LINE3, A_MONDAY), tmp_path / "truth.jsonl")
    bundle.advance_to(45 * 60)
    async with pty_serial_link() as link:
        face = ModbusFace(bundle.sim, serial_port=link.server_path, baudrate=19200)
        bundle.sim.subscribe(face.apply)
        await face.start()
        rtu = serial_client(link.client_path, timeout_s=0.5)
        try:
            assert face.endpoints() == [
                f"modbus-rtu://{link.server_path} @19200 8N1 (unit ids 1-3)"
            ]
            assert await rtu.connect()
            served = Served(bundle, face)
            for name in ("weld-1", "pack-1"):
                check_against_truth(await read_machine(rtu, bundle.sim, name), served)
            # RTU: an unknown unit id gets no answer at all
            with pytest.raises(ModbusIOException):
                await rtu.read_holding_registers(0, count=1, device_id=9)
            bundle.advance_to(50 * 60)
            check_against_truth(await read_machine(rtu, bundle.sim, "press-1"), served)
            assert await face.drop_connections() == 0  # nothing to drop on a serial line
            await face.restart()  # the device is closed and opened again
            check_against_truth(await read_machine(rtu, bundle.sim, "press-1"), served)
        finally:
            rtu.close()
            await face.stop()
            bundle.sim.close()
