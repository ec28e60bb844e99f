"""ModbusSource against the simulator's real pymodbus server (TCP, and RTU over a pty)."""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from _modbus_helpers import SimBundle, build_sim, pty_serial_link, wait_until

from edge_agent.config import load_config
from edge_agent.config.models import (
    Connection,
    ModbusAddress,
    ModbusConnection,
    ModbusRtu,
    ModbusTcp,
    PollSampling,
    Role,
    Tag,
)
from edge_agent.samples import ConnectionChange, Quality, Sample
from edge_agent.sources import Source
from edge_agent.sources.modbus import ModbusSource
from simulators.faces.modbus import ModbusFace
from simulators.faults.state import BadTag, FaultState
from simulators.runtime import default_start
from simulators.scenario.loader import load_scenario, parse_scenario
from simulators.tags import DataType, TagSpec, value_of

pytestmark = pytest.mark.integration

LINE3 = load_scenario("line-3-machines")
A_MONDAY = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ALL_RUNNING_S = 30 * 60  # 06:30: all three machines run order 9001
PRESS_DOWN_S = 85 * 60  # 07:25: press down, weld and pack starved


# -- fixtures and helpers ---------------------------------------------------------------------


@dataclass
class Served:
    bundle: SimBundle
    face: ModbusFace


@pytest.fixture
async def line3() -> AsyncIterator[Served]:
    bundle = build_sim(LINE3, default_start(LINE3, A_MONDAY), None)
    bundle.advance_to(ALL_RUNNING_S)
    face = ModbusFace(bundle.sim, port=0, faults=FaultState())
    bundle.sim.subscribe(face.apply)
    await face.start()
    try:
        yield Served(bundle, face)
    finally:
        await face.stop()
        bundle.sim.close()


def tcp_connection(port: int, **options: Any) -> Connection:
    settings = ModbusConnection(tcp=ModbusTcp(host="127.0.0.1", port=port), **options)
    return Connection(id="line3-modbus", modbus=settings)


def catalogue_tags(
    bundle: SimBundle, machines: list[str], interval_s: float
) -> dict[str, tuple[TagSpec, Tag]]:
    """Every tag the simulator serves over Modbus, configured as the agent would."""
    tags: dict[str, tuple[TagSpec, Tag]] = {}
    for name in machines:
        layout = bundle.sim.machine_configs[name].modbus
        for spec in bundle.sim.tags[name]:
            if spec.modbus is None:
                continue
            string = spec.data_type is DataType.STRING
            address = ModbusAddress(
                table=spec.modbus.table.value,
                address=spec.modbus.address,
                unit_id=spec.modbus.unit_id,
                type=spec.data_type.value,
                byte_order=layout.byte_order.value,
                word_order=layout.word_order.value,
                length=spec.modbus.count if string else None,
            )
            tag = Tag(
                id=spec.name,
                role=Role.PROCESS_VALUE,
                address=address,
                sampling=PollSampling(interval_s=interval_s),
            )
            tags[f"{name}.{spec.name}"] = (spec, tag)
    return tags


def configured(tags: dict[str, tuple[TagSpec, Tag]]) -> list[tuple[str, Tag]]:
    return [(tag_id, tag) for tag_id, (_, tag) in tags.items()]


def expected_values(bundle: SimBundle, tags: dict[str, tuple[TagSpec, Tag]]) -> dict[str, Any]:
    now = bundle.clock.now()
    signals = {name: bundle.sim.machines[name].signals(now) for name in bundle.sim.machines}
    return {
        tag_id: value_of(spec, signals[spec.machine]).value for tag_id, (spec, _) in tags.items()
    }


def same(read: Any, model: Any) -> bool:
    if isinstance(model, float) and not isinstance(read, bool):  # float32 on the wire
        return math.isclose(read, model, rel_tol=1e-6, abs_tol=1e-9)
    return read == model and type(read) is type(model)


@dataclass
class Collected:
    """What a source emitted, in order."""

    items: list[Sample | ConnectionChange] = field(default_factory=list)

    def emit(self, batch: list[Sample | ConnectionChange]) -> None:
        assert batch, "a source should not emit empty batches"
        self.items.extend(batch)

    def samples(self, tag: str | None = None, since: int = 0) -> list[Sample]:
        return [
            item
            for item in self.items[since:]
            if isinstance(item, Sample) and (tag is None or item.tag == tag)
        ]

    def latest(self) -> dict[str, Sample]:
        return {sample.tag: sample for sample in self.samples()}

    def changes(self) -> list[bool]:
        return [item.connected for item in self.items if isinstance(item, ConnectionChange)]

    def statuses(self, tag: str) -> list[str]:
        return [sample.status for sample in self.samples(tag)]


@asynccontextmanager
async def running(source: Source) -> AsyncIterator[Collected]:
    collected = Collected()
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(collected.emit, stop))
    try:
        yield collected
        assert not task.done(), "the source ended on its own"
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def until_values_match(
    got: Collected, expected: dict[str, Any], timeout_s: float = 5.0
) -> None:
    def mismatches() -> dict[str, tuple[Any, Any]]:
        latest = got.latest()
        return {
            tag: (latest[tag].value if tag in latest else "<none>", value)
            for tag, value in expected.items()
            if tag not in latest or not same(latest[tag].value, value)
        }

    try:
        await wait_until(lambda: not mismatches(), timeout_s=timeout_s)
    except AssertionError:
        pytest.fail(f"read != served (read, model): {mismatches()}")


# -- values -----------------------------------------------------------------------------------


async def test_every_served_tag_of_every_unit_reads_as_the_simulator_serves_it(
    line3: Served,
) -> None:
    machines = ["press-1", "weld-1", "pack-1"]  # big/big, big word-little, little/little
    tags = catalogue_tags(line3.bundle, machines, interval_s=0.1)
    source = ModbusSource(tcp_connection(line3.face.port), configured(tags))
    # per unit: holding 0-41, input registers, discrete inputs, coil: 4 reads
    assert [len(group.requests) for group in source.groups] == [12]
    async with running(source) as got:
        for offset_s in (ALL_RUNNING_S, PRESS_DOWN_S):
            line3.bundle.advance_to(offset_s)
            await until_values_match(got, expected_values(line3.bundle, tags))
        assert got.changes() == [True]
    sample = got.latest()["weld-1.Order"]
    assert (sample.value, sample.quality, sample.status) == ("9001", Quality.GOOD, "Good")
    assert sample.source_ts is None
    assert sample.received_ts.tzinfo is UTC
    assert source.stats.timeouts == source.stats.exception_responses == 0


async def test_each_requests_samples_are_emitted_as_soon_as_they_are_read(
    line3: Served,
) -> None:
    tags = catalogue_tags(line3.bundle, ["press-1", "weld-1", "pack-1"], interval_s=0.1)
    source = ModbusSource(tcp_connection(line3.face.port), configured(tags))
    batches: list[list[Sample | ConnectionChange]] = []
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(batches.append, stop))
    try:
        await wait_until(lambda: sum(len(b) for b in batches) > 2 * len(tags), timeout_s=5)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    reads = [batch for batch in batches if isinstance(batch[0], Sample)]
    # 12 requests a poll: 12 emits, each with the samples of one request (one read time)
    assert len(reads) >= 12
    assert all(len({sample.received_ts for sample in batch}) == 1 for batch in reads)


async def test_the_shipped_agent_config_reads_pack_1(line3: Served) -> None:
    config = load_config("config/agent.line-3-machines.yaml")
    base = config.connection("pack-modbus")
    assert base.modbus is not None
    tcp = ModbusTcp(host="127.0.0.1", port=line3.face.port)
    connection = base.model_copy(update={"modbus": base.modbus.model_copy(update={"tcp": tcp})})
    [pack] = [eq for eq in config.equipment if eq.id == "pack-1"]
    source = ModbusSource(connection, [(f"pack-1.{tag.id}", tag) for tag in pack.tags])
    assert [group.interval_s for group in source.groups] == [0.5, 1.0, 5.0]
    signals = line3.bundle.sim.machines["pack-1"].signals(line3.bundle.clock.now())
    async with running(source) as got:
        await until_values_match(
            got,
            {
                "pack-1.state": signals["state"].value,
                "pack-1.reason": signals["reason"].value,
                "pack-1.total": signals["total"].value,
                "pack-1.good": signals["good"].value,
                "pack-1.order": "9001",
                "pack-1.product": "panel-x",
                "pack-1.speed": signals["pv.speed"].value,
            },
        )


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
    modbus: {unit_id: 2, byte_order: little, word_order: little}
    timeline: ["06:00 run p order 1"]
"""


async def test_a_uint16_counter_wraps_and_is_reported_raw() -> None:
    scenario = parse_scenario(FAST_COUNTERS)
    assert scenario.start is not None
    bundle = build_sim(scenario, scenario.start, None)
    face = ModbusFace(bundle.sim, port=0)
    bundle.sim.subscribe(face.apply)
    await face.start()
    tags = {
        tag_id: entry
        for tag_id, entry in catalogue_tags(bundle, ["wide", "narrow"], 0.05).items()
        if tag_id.endswith("TotalCount")
    }
    source = ModbusSource(tcp_connection(face.port), configured(tags))
    try:
        async with running(source) as got:
            for offset_s, wide, narrow in ((65.535, 65535, 65535), (65.536, 65536, 0)):
                bundle.advance_to(offset_s)  # one part per millisecond
                expected = {"wide.TotalCount": wide, "narrow.TotalCount": narrow}
                await until_values_match(got, expected)
        narrow_values = [s.value for s in got.samples("narrow.TotalCount")]
        assert 65535 in narrow_values
        assert narrow_values[-1] == 0  # the source does not unwrap: derive does
    finally:
        await face.stop()
        bundle.sim.close()


# -- faults -----------------------------------------------------------------------------------


async def test_a_hang_is_bad_then_recovers_without_restarting_the_source(line3: Served) -> None:
    tags = catalogue_tags(line3.bundle, ["pack-1"], interval_s=0.1)
    connection = tcp_connection(line3.face.port, timeout_s=0.2)
    source = ModbusSource(connection, configured(tags), breaker_fail_max=2, breaker_reset_s=0.5)
    state = "pack-1.State"
    async with running(source) as got:
        await wait_until(lambda: got.samples(state), timeout_s=3)
        hang_s = 1.5
        line3.face.faults.hang_until_mono = time.monotonic() + hang_s
        hang_started = datetime.now(UTC)
        await wait_until(lambda: "DeviceUnavailable" in got.statuses(state), timeout_s=3)
        assert "Timeout" in got.statuses(state)
        assert source.device_state(3) in ("open", "half-open")

        def recovered() -> bool:
            last = got.samples(state)[-1]
            return last.quality is Quality.GOOD and last.received_ts > hang_started

        await wait_until(recovered, timeout_s=hang_s + 3)
        assert source.device_state(3) == "closed"
    during = [s for s in got.samples(state) if s.received_ts > hang_started]
    assert {s.status for s in during} <= {"Good", "Timeout", "DeviceUnavailable"}
    # DeviceUnavailable once per transition, not per poll: one per tag of the unit
    unavailable = [s for s in got.samples() if s.status == "DeviceUnavailable"]
    assert sorted(s.tag for s in unavailable) == sorted(tags)
    assert all(s.value is None and s.quality is Quality.BAD for s in unavailable)
    assert source.stats.timeouts >= 2


async def test_dropped_connections_and_a_restart_reconnect(line3: Served) -> None:
    tags = catalogue_tags(line3.bundle, ["weld-1"], interval_s=0.1)
    source = ModbusSource(
        tcp_connection(line3.face.port, timeout_s=0.3),
        configured(tags),
        backoff_initial_s=0.05,
        backoff_max_s=0.4,
    )
    state = "weld-1.State"

    def polling_after(index: int) -> Callable[[], bool]:
        return lambda: any(s.quality is Quality.GOOD for s in got.samples(state, since=index))

    async with running(source) as got:
        await wait_until(lambda: got.changes() == [True], timeout_s=3)
        await wait_until(polling_after(0), timeout_s=3)

        assert await line3.face.drop_connections() == 1
        await wait_until(lambda: got.changes() == [True, False, True], timeout_s=3)
        await wait_until(polling_after(len(got.items)), timeout_s=3)

        restart = asyncio.create_task(line3.face.restart(downtime_s=0.8))
        await wait_until(lambda: got.changes() == [True, False, True, False], timeout_s=3)
        await restart
        await wait_until(lambda: got.changes() == [True, False, True, False, True], timeout_s=3)
        await wait_until(polling_after(len(got.items)), timeout_s=3)
    lost = [i for i in got.items if isinstance(i, ConnectionChange) and not i.connected]
    assert all(change.detail for change in lost)  # says why
    assert source.stats.connects >= 3  # several refused attempts happened in the downtime


async def test_an_exception_response_fails_only_the_requests_covering_it(line3: Served) -> None:
    tags = catalogue_tags(line3.bundle, ["press-1", "weld-1"], interval_s=0.1)
    unit9 = Tag(
        id="ghost",
        role=Role.PROCESS_VALUE,
        address=ModbusAddress(table="holding_register", address=0, unit_id=9),
        sampling=PollSampling(interval_s=0.1),
    )
    source = ModbusSource(
        tcp_connection(line3.face.port),
        [*configured(tags), ("ghost.value", unit9)],
        breaker_fail_max=2,
        breaker_reset_s=30,
    )
    line3.face.faults.bad_tags[("press-1", "GoodCount")] = BadTag(modbus_exception=4)  # HR 4-5
    holding = {t for t, (spec, _) in tags.items() if spec.modbus.table.value == "holding_register"}
    async with running(source) as got:

        def settled() -> bool:
            latest = got.latest()
            return len(latest) == len(tags) + 1 and source.device_state(9) == "open"

        await wait_until(settled, timeout_s=5)
        mark = len(got.items)
        await wait_until(lambda: len(got.samples("weld-1.State", since=mark)) >= 2, timeout_s=3)
        for tag_id in tags:
            sample = got.latest()[tag_id]
            if tag_id.startswith("press-1.") and tag_id in holding:
                assert (sample.quality, sample.status) == (Quality.BAD, "ModbusException(4)")
                assert sample.value is None
            else:
                assert (sample.quality, sample.status) == (Quality.GOOD, "Good"), tag_id
        # unit 9 is unknown to the simulator: gateway exception 11 opens its breaker
        assert got.statuses("ghost.value")[:2] == ["ModbusException(11)", "ModbusException(11)"]
        assert got.statuses("ghost.value")[-1] == "DeviceUnavailable"
        assert source.device_state(1) == "closed"  # an answer with an exception is an answer
        status = {device.device: device for device in source.status()}
        assert set(status) == {"unit-1", "unit-2", "unit-9"}  # press-1, weld-1, the ghost
        ghost, press = status["unit-9"], status["unit-1"]
        assert (ghost.connected, ghost.breaker, ghost.values_total) == (False, "open", 0)
        assert ghost.read_errors_total >= 2
        assert ghost.last_error is not None
        assert "ModbusException(11)" in ghost.last_error
        assert (press.connected, press.breaker) == (True, "closed")
        assert press.values_total > 0
        assert press.read_errors_total > 0
        assert press.last_round_trip_s is not None
        assert 0 < press.last_round_trip_s < 5

        line3.face.faults.bad_tags.clear()
        mark = len(got.items)
        await wait_until(
            lambda: any(s.quality is Quality.GOOD for s in got.samples("press-1.GoodCount", mark)),
            timeout_s=3,
        )
    assert got.statuses("ghost.value").count("DeviceUnavailable") == 1


async def test_rtu_a_dead_unit_does_not_stall_the_live_one() -> None:
    bundle = build_sim(LINE3, default_start(LINE3, A_MONDAY), None)
    bundle.advance_to(ALL_RUNNING_S)
    interval_s, timeout_s = 0.2, 0.25
    async with pty_serial_link() as link:
        face = ModbusFace(bundle.sim, serial_port=link.server_path, baudrate=19200)
        bundle.sim.subscribe(face.apply)
        await face.start()
        rtu = ModbusRtu(port=link.client_path, baudrate=19200, parity="N")
        connection = Connection(
            id="line3-rtu", modbus=ModbusConnection(rtu=rtu, timeout_s=timeout_s)
        )
        tags = catalogue_tags(bundle, ["press-1"], interval_s)
        live = {"press-1.State": tags["press-1.State"], "press-1.Order": tags["press-1.Order"]}
        dead = Tag(
            id="ghost",
            role=Role.PROCESS_VALUE,
            address=ModbusAddress(table="holding_register", address=0, unit_id=9),
            sampling=PollSampling(interval_s=interval_s),
        )
        source = ModbusSource(
            connection,
            [*configured(live), ("ghost.value", dead)],
            breaker_fail_max=2,
            breaker_reset_s=1.0,
        )
        try:
            async with running(source) as got:
                await until_values_match(got, expected_values(bundle, live))
                await wait_until(lambda: source.device_state(9) != "closed", timeout_s=3)
                opened_at = time.monotonic()
                mark = len(got.items)
                window_s = 2.5  # spans two half-open trials of unit 9
                await asyncio.sleep(window_s)  # measuring a rate over a window, not syncing
                live_samples = got.samples("press-1.State", since=mark)
                ghost = got.statuses("ghost.value")
            arrivals = [s.received_ts.timestamp() for s in live_samples]
            gaps = [b - a for a, b in itertools.pairwise(arrivals)]
            # unit 1 keeps its interval while unit 9 is skipped; a trial costs one timeout
            assert len(live_samples) >= 0.75 * window_s / interval_s
            assert statistics.median(gaps) == pytest.approx(interval_s, abs=0.05)
            assert max(gaps) < interval_s + timeout_s + 0.15
            assert ghost[:2] == ["Timeout", "Timeout"]
            assert ghost.count("DeviceUnavailable") == 1
            assert ghost.count("Timeout") <= 2 + math.ceil(window_s / 1.0) + 1
            assert source.stats.skipped_requests > 0
            assert time.monotonic() - opened_at >= window_s
            assert all(s.value == 1 for s in live_samples)  # press-1 is running
        finally:
            await face.stop()
            bundle.sim.close()


# -- an out-of-sync stream resets the connection ----------------------------------------------


@asynccontextmanager
async def misbehaving_server(first_reply: str) -> AsyncIterator[int]:
    """Answers holding-register reads with value = address; its first connection
    answers with a wrong transaction id (``first_reply="wrong-tid"``) or garbage."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        try:
            while True:
                tid, _, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                function, start, count = struct.unpack(">BHH", await reader.readexactly(length - 1))
                if first and first_reply == "garbage":
                    writer.write(b"\x00\x07\xff\xff\xff")
                    continue
                payload = struct.pack(
                    f">BB{count}H", function, 2 * count, *range(start, start + count)
                )
                reply_tid = (tid + 1) if first else tid
                writer.write(struct.pack(">HHHB", reply_tid, 0, len(payload) + 1, unit) + payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("first_reply", ["wrong-tid", "garbage"])
async def test_an_out_of_sync_response_resets_the_connection(first_reply: str) -> None:
    async with misbehaving_server(first_reply) as port:
        tag = Tag(
            id="value",
            role=Role.PROCESS_VALUE,
            address=ModbusAddress(table="holding_register", address=7, unit_id=1),
            sampling=PollSampling(interval_s=0.1),
        )
        source = ModbusSource(
            tcp_connection(port, timeout_s=0.2), [("m.value", tag)], backoff_initial_s=0.05
        )
        async with running(source) as got:
            await wait_until(lambda: got.latest().get("m.value") is not None, timeout_s=5)
            await wait_until(lambda: got.latest()["m.value"].value == 7, timeout_s=5)
        assert got.changes() == [True, False, True]
        [lost] = [i for i in got.items if isinstance(i, ConnectionChange) and not i.connected]
        assert "out of sync" in lost.detail
        assert source.stats.resets == 1
        assert source.device_state(1) == "closed"  # not the device's fault


async def test_close_after_poll_reconnects_quietly(line3: Served) -> None:
    tags = catalogue_tags(line3.bundle, ["pack-1"], interval_s=0.1)
    options = {
        "close_after_poll": True,
        "pause_after_connect_s": 0.02,
        "gap_between_requests_s": 0.01,
    }
    source = ModbusSource(tcp_connection(line3.face.port, **options), configured(tags))
    async with running(source) as got:
        await wait_until(lambda: source.stats.connects >= 4, timeout_s=5)
        await until_values_match(got, expected_values(line3.bundle, tags))
    assert got.changes() == [True]  # deliberate closes are not connection losses
