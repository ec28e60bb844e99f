"""Benchmark: can the simulator serve the 100-machine scenario (~10k tags at 1 Hz)?

Starts ``plc-sim run load-100-machines`` in its own process (speed 1), then in turn:

1. polls every Modbus register of all 100 units once per second (4 connections);
2. polls every changing OPC UA variable once per second (Read, 500 nodes a request,
   4 requests in flight);
3. subscribes to every changing OPC UA variable (1 s publishing interval) and counts
   the data changes that arrive.

For each phase it prints the values/s the client saw change, how stale they were
(OPC UA: response time - SourceTimestamp), the simulator's own step lag and step
duration (from its control endpoint), and the CPU used by the simulator process.

    ./lineside bench sim_load [--seconds 60] [--phases modbus,opcua-poll,opcua-sub]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulators.scenario.loader import load_scenario  # noqa: E402
from simulators.scenario.models import expand_machines  # noqa: E402
from simulators.tags import Table, machine_tags  # noqa: E402

SCENARIO = "load-100-machines"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class PhaseResult:
    name: str
    seconds: float
    changes: int = 0
    values_read: int = 0
    cycles: int = 0
    cycle_s: list[float] = field(default_factory=list)
    staleness_s: list[float] = field(default_factory=list)
    sim_cpu_pct: float = 0.0
    client_cpu_pct: float = 0.0
    sim_status: dict = field(default_factory=dict)

    def report(self) -> str:
        lines = [f"## {self.name} ({self.seconds:.0f} s)"]
        if self.cycles > 1:  # polling: the first cycle has nothing to compare with
            per_cycle = self.changes / (self.cycles - 1)
            lines.append(f"  changed values / poll : {per_cycle:,.0f} (after the first poll)")
        else:
            lines.append(f"  changed values seen/s : {self.changes / self.seconds:,.0f}")
        if self.values_read:
            lines.append(f"  values read/s         : {self.values_read / self.seconds:,.0f}")
        if self.cycle_s:
            lines.append(
                f"  poll cycle            : p50 {pct(self.cycle_s, 0.5) * 1000:.0f} ms, "
                f"p99 {pct(self.cycle_s, 0.99) * 1000:.0f} ms, "
                f"max {max(self.cycle_s) * 1000:.0f} ms ({self.cycles} cycles)"
            )
        if self.staleness_s:
            lines.append(
                f"  staleness (now - src) : p50 {pct(self.staleness_s, 0.5) * 1000:.0f} ms, "
                f"p99 {pct(self.staleness_s, 0.99) * 1000:.0f} ms, "
                f"max {max(self.staleness_s) * 1000:.0f} ms"
            )
        step = self.sim_status.get("step_duration_s", {})
        lines.append(
            f"  simulator step        : p50 {step.get('p50', 0) * 1000:.1f} ms, "
            f"p99 {step.get('p99', 0) * 1000:.1f} ms, max {step.get('max', 0) * 1000:.1f} ms; "
            f"tick lag max {self.sim_status.get('max_step_lag_s', 0) * 1000:.0f} ms"
        )
        lines.append(f"  simulator CPU         : {self.sim_cpu_pct:.0f}% of one core")
        lines.append(f"  client CPU            : {self.client_cpu_pct:.0f}% of one core")
        return "\n".join(lines)


class Simulator:
    def __init__(self, data_dir: Path, scenario: str = SCENARIO) -> None:
        self.scenario = scenario
        self.opcua_port = free_port()
        self.modbus_port = free_port()
        self.control_port = free_port()
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0

    def start(self) -> None:
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/plc-sim"),
                "run",
                self.scenario,
                "--no-live",
                "--speed",
                "1",
                "--opcua-port",
                str(self.opcua_port),
                "--modbus-port",
                str(self.modbus_port),
                "--control-port",
                str(self.control_port),
                "--data-dir",
                str(self.data_dir),
                "--opcua-security",
                "none",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.data_dir / "sim.log", "wb"),  # noqa: SIM115
        )
        deadline = started + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"simulator exited: see {self.data_dir / 'sim.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url("/health"), timeout=1).status_code == 200:
                    self.startup_s = time.monotonic() - started
                    return
            time.sleep(0.2)
        raise SystemExit("simulator did not start within 300 s")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.control_port}{path}"

    def status(self) -> dict:
        return httpx.get(self.url("/status"), timeout=10).json()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_window(sim: Simulator) -> tuple[float, float, float]:
    """CPU counters and start time of a measurement window."""
    return cpu_seconds(sim.proc.pid), time.process_time(), time.monotonic()


def finish_window(
    sim: Simulator, result: PhaseResult, sim_cpu0: float, client_cpu0: float, started: float
) -> None:
    elapsed = time.monotonic() - started
    result.seconds = elapsed
    result.sim_cpu_pct = (cpu_seconds(sim.proc.pid) - sim_cpu0) / elapsed * 100
    result.client_cpu_pct = (time.process_time() - client_cpu0) / elapsed * 100
    result.sim_status = sim.status()


async def poll_every_second(
    sim: Simulator, result: PhaseResult, seconds: float, sweep: Callable[[], Awaitable[None]]
) -> None:
    """Run ``sweep`` once per second for ``seconds``; fill timings and CPU into ``result``."""
    sim_cpu0, client_cpu0, started = start_window(sim)
    next_cycle = started
    while time.monotonic() - started < seconds:
        cycle_started = time.monotonic()
        await sweep()
        result.cycles += 1
        result.cycle_s.append(time.monotonic() - cycle_started)
        next_cycle += 1.0
        await asyncio.sleep(max(0.0, next_cycle - time.monotonic()))
    finish_window(sim, result, sim_cpu0, client_cpu0, started)


# -- Modbus ------------------------------------------------------------------------------


def modbus_plan() -> list[tuple[int, Table, int, int]]:
    """(unit, table, address, count) requests covering every register, <= 124 each."""
    plan = []
    for machine in expand_machines(load_scenario(SCENARIO)):
        spans: dict[Table, list[tuple[int, int]]] = {}
        for tag in machine_tags(machine):
            if tag.modbus and tag.modbus.table in (Table.HOLDING_REGISTER, Table.INPUT_REGISTER):
                spans.setdefault(tag.modbus.table, []).append(
                    (tag.modbus.address, tag.modbus.count)
                )
        for table, items in spans.items():
            items.sort()
            start, end = items[0][0], items[0][0]
            for address, count in items:
                if address + count - start > 124:  # keep values whole inside one request
                    plan.append((machine.modbus.unit_id, table, start, end - start))
                    start = address
                end = address + count
            plan.append((machine.modbus.unit_id, table, start, end - start))
    return plan


async def modbus_phase(sim: Simulator, seconds: float, connections: int = 4) -> PhaseResult:
    plan = modbus_plan()
    clients = [
        AsyncModbusTcpClient("127.0.0.1", port=sim.modbus_port, timeout=5)
        for _ in range(connections)
    ]
    for client in clients:
        await client.connect()
    previous: dict[tuple[int, Table, int], bytes] = {}
    result = PhaseResult("Modbus TCP polling, every register of 100 units each second", seconds)
    shards = [plan[i::connections] for i in range(connections)]

    async def sweep(client: AsyncModbusTcpClient, requests: list) -> int:
        changed = 0
        for unit, table, address, count in requests:
            reader = (
                client.read_input_registers
                if table is Table.INPUT_REGISTER
                else client.read_holding_registers
            )
            response = await reader(address, count=count, device_id=unit)
            if response.isError():
                raise RuntimeError(f"unit {unit} {table} {address}: {response}")
            raw = struct.pack(f">{count}H", *response.registers)
            key = (unit, table, address)
            old = previous.get(key)
            if old is not None:
                changed += sum(old[i : i + 4] != raw[i : i + 4] for i in range(0, len(raw), 4))
            previous[key] = raw
            result.values_read += count // 2
        return changed

    async def sweep_all() -> None:
        counts = await asyncio.gather(*(sweep(c, s) for c, s in zip(clients, shards, strict=True)))
        result.changes += sum(counts)

    await poll_every_second(sim, result, seconds, sweep_all)
    for client in clients:
        client.close()
    return result


# -- OPC UA ------------------------------------------------------------------------------


def changing_node_ids(ns: int, machines: int = 100) -> list[ua.NodeId]:
    out = []
    for machine in expand_machines(load_scenario(SCENARIO))[:machines]:
        for tag in machine_tags(machine):
            if tag.opcua_id and tag.signal.startswith(("ai.", "pv.")):
                out.append(ua.NodeId(tag.opcua_id, ns))
    return out


async def opcua_connect(sim: Simulator) -> tuple[Client, int]:
    client = Client(f"opc.tcp://127.0.0.1:{sim.opcua_port}", timeout=30, watchdog_intervall=10)
    await client.connect()
    ns = await client.get_namespace_index(load_scenario(SCENARIO).namespace_uri)
    return client, ns


async def opcua_poll_phase(
    sim: Simulator, seconds: float, chunk: int = 500, in_flight: int = 4, machines: int = 100
) -> PhaseResult:
    client, ns = await opcua_connect(sim)
    nodes = changing_node_ids(ns, machines)
    chunks = [nodes[i : i + chunk] for i in range(0, len(nodes), chunk)]
    result = PhaseResult(f"OPC UA polling, {len(nodes):,} changing variables each second", seconds)
    previous: dict[ua.NodeId, object] = {}
    gate = asyncio.Semaphore(in_flight)

    async def read(ids: list[ua.NodeId]) -> None:
        params = ua.ReadParameters()
        params.NodesToRead = [
            ua.ReadValueId(NodeId=i, AttributeId=ua.AttributeIds.Value) for i in ids
        ]
        async with gate:
            values = await client.uaclient.read(params)
        now = time.time()
        for node_id, dv in zip(ids, values, strict=True):
            if not dv.StatusCode.is_good():
                raise RuntimeError(f"{node_id}: {dv.StatusCode}")
            result.staleness_s.append(now - dv.SourceTimestamp.timestamp())
            if previous.get(node_id, dv.Value.Value) != dv.Value.Value:
                result.changes += 1
            previous[node_id] = dv.Value.Value
        result.values_read += len(ids)

    async def read_all() -> None:
        await asyncio.gather(*(read(c) for c in chunks))

    await poll_every_second(sim, result, seconds, read_all)
    await client.disconnect()
    return result


async def opcua_subscribe_phase(sim: Simulator, seconds: float, machines: int = 100) -> PhaseResult:
    client, ns = await opcua_connect(sim)
    nodes = [client.get_node(i) for i in changing_node_ids(ns, machines)]
    result = PhaseResult(f"OPC UA subscription to {len(nodes):,} changing variables", seconds)
    counting = False

    class Handler:
        def datachange_notification(self, node, val, data) -> None:
            if counting:
                result.changes += 1
                source = data.monitored_item.Value.SourceTimestamp
                result.staleness_s.append(time.time() - source.timestamp())

    subscription = await client.create_subscription(
        ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=1000,
            RequestedMaxKeepAliveCount=10,
            RequestedLifetimeCount=100,
            MaxNotificationsPerPublish=0,
        ),
        Handler(),
    )
    created = time.monotonic()
    for i in range(0, len(nodes), 1000):
        await subscription.subscribe_data_change(
            nodes[i : i + 1000], queuesize=1, sampling_interval=1000
        )
    print(f"  (created {len(nodes):,} monitored items in {time.monotonic() - created:.1f} s)")
    sim_cpu0, client_cpu0, started = start_window(sim)
    counting = True
    await asyncio.sleep(seconds)  # the measurement window itself, not a synchronisation
    counting = False
    finish_window(sim, result, sim_cpu0, client_cpu0, started)
    await subscription.delete()
    await client.disconnect()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--phases", default="modbus,opcua-poll,opcua-sub")
    parser.add_argument(
        "--opcua-machines",
        type=int,
        default=100,
        help="OPC UA phases read/subscribe the tags of this many machines",
    )
    args = parser.parse_args()
    phases = args.phases.split(",")
    with tempfile.TemporaryDirectory(prefix="sim-bench-") as tmp:
        sim = Simulator(Path(tmp))
        print(f"starting plc-sim run {SCENARIO} (speed 1) ...")
        sim.start()
        try:
            status = sim.status()
            print(
                f"simulator ready in {sim.startup_s:.1f} s "
                f"({len(status['machines'])} machines), RSS {rss_mb(sim.proc.pid):.0f} MB, "
                f"{os.cpu_count()} CPUs\n"
            )
            baseline_cpu0, t0 = cpu_seconds(sim.proc.pid), time.monotonic()
            await asyncio.sleep(10)  # idle window: simulator cost with no client attached
            idle = (cpu_seconds(sim.proc.pid) - baseline_cpu0) / (time.monotonic() - t0) * 100
            print(f"## no client attached: simulator CPU {idle:.0f}% of one core\n")
            runners = {
                "modbus": modbus_phase,
                "opcua-poll": opcua_poll_phase,
                "opcua-sub": opcua_subscribe_phase,
            }
            for phase in phases:
                if phase.startswith("opcua"):
                    result = await runners[phase](sim, args.seconds, machines=args.opcua_machines)
                else:
                    result = await runners[phase](sim, args.seconds)
                print(result.report())
                print()
            print(f"simulator RSS at end: {rss_mb(sim.proc.pid):.0f} MB")
        finally:
            sim.stop()


if __name__ == "__main__":
    asyncio.run(main())
