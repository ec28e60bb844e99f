"""Benchmark: values per second the agent acquires and turns into events.

Starts ``plc-sim run load-100-machines`` (speed 1) in its own process, builds an agent
configuration for the first N machines (state, counters, order, product and every
process value; 103 tags a machine), and runs the agent's source + derivation +
stamping pipeline in this process for a while. Prints values/s acquired, events/s,
agent CPU (this process) and RSS, and the simulator's CPU.

    ./lineside bench agent_sources --protocol modbus --machines 100 --interval 0.2
    ./lineside bench agent_sources --protocol opcua --machines 100 --interval 1
    ./lineside bench agent_sources --protocol opcua-subscribe --machines 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sim_load import Simulator, cpu_seconds, rss_mb  # noqa: E402

from edge_agent.config.models import AgentConfig  # noqa: E402
from edge_agent.config.roles import tags_by_connection  # noqa: E402
from edge_agent.pipeline import CoalescingIntake, EventPipeline  # noqa: E402
from edge_agent.samples import Sample  # noqa: E402
from edge_agent.sequences import SequenceStore  # noqa: E402
from edge_agent.sources.factory import build_source  # noqa: E402
from simulators.scenario.loader import load_scenario  # noqa: E402
from simulators.scenario.models import expand_machines  # noqa: E402
from simulators.tags import Table, machine_tags  # noqa: E402

ROLE_OF = {
    "State": "state",
    "Reason": "reason",
    "TotalCount": "total_count",
    "GoodCount": "good_count",
    "Order": "order",
    "Product": "product",
}
TABLE = {Table.HOLDING_REGISTER: "holding_register", Table.INPUT_REGISTER: "input_register"}


def agent_config(
    protocol: str, machines: int, interval_s: float, sim: Simulator, data_dir: Path
) -> AgentConfig:
    scenario = load_scenario("load-100-machines")
    opcua = protocol.startswith("opcua")
    sampling = (
        {
            "mode": "subscribe",
            "sampling_interval_s": interval_s,
            "publishing_interval_s": interval_s,
            "queue_size": 1,
        }
        if protocol == "opcua-subscribe"
        else {"mode": "poll", "interval_s": interval_s}
    )
    equipment = []
    for machine in expand_machines(scenario)[:machines]:
        tags = []
        for tag in machine_tags(machine):
            role = ROLE_OF.get(tag.name) or (
                "process_value" if tag.signal.startswith(("ai.", "pv.")) else None
            )
            if role is None:
                continue
            entry: dict = {
                "id": tag.name.replace("ProcessValues.", "pv_").replace(".", "_"),
                "role": role,
                "sampling": sampling,
            }
            if role.endswith("_count"):
                entry["counter_width"] = 32
            if opcua:
                entry["address"] = f"nsu={scenario.namespace_uri};s={tag.opcua_id}"
            else:
                assert tag.modbus is not None
                kind = tag.data_type.value
                entry["address"] = {
                    "table": TABLE[tag.modbus.table],
                    "address": tag.modbus.address,
                    "unit_id": tag.modbus.unit_id,
                    "type": kind,
                    **({"length": tag.modbus.count} if kind == "string" else {}),
                }
            tags.append(entry)
        equipment.append({"id": machine.name, "connection": "plc", "tags": tags})
    connection = (
        {
            "id": "plc",
            "opcua": {
                "endpoint": f"opc.tcp://127.0.0.1:{sim.opcua_port}",
                "timeout_s": 30,
                "watchdog_interval_s": 10,
            },
        }
        if opcua
        else {
            "id": "plc",
            "modbus": {"tcp": {"host": "127.0.0.1", "port": sim.modbus_port}, "timeout_s": 5},
        }
    )
    return AgentConfig.model_validate(
        {
            "agent": {
                "id": "bench",
                "data_dir": str(data_dir),
                "location": {
                    "enterprise": "acme",
                    "site": "plant9",
                    "area": "machining",
                    "line": "cells",
                },
            },
            "connections": [connection],
            "equipment": equipment,
        }
    )


async def run(
    protocol: str, machines: int, interval_s: float, seconds: float, warmup_s: float
) -> None:
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        sim = Simulator(Path(tmp))
        print("starting plc-sim run load-100-machines (speed 1) ...")
        sim.start()
        try:
            config = agent_config(protocol, machines, interval_s, sim, Path(tmp) / "agent")
            tags = tags_by_connection(config)["plc"]
            counts = {"values": 0, "events": 0}

            def sink(events: list) -> None:
                counts["events"] += len(events)

            pipeline = EventPipeline(config, SequenceStore(Path(tmp) / "seq.sqlite"), sink)

            intake = CoalescingIntake(pipeline)

            def emit(items: list) -> None:
                counts["values"] += sum(1 for i in items if isinstance(i, Sample))
                intake.emit(items)

            source = build_source(config, config.connection("plc"), tags)
            stop = asyncio.Event()
            task = asyncio.create_task(source.run(emit, stop))
            flusher = asyncio.create_task(intake.run(stop))
            print(
                f"{protocol}: {len(tags):,} tags on {machines} machines, every {interval_s} s;"
                f" warming up {warmup_s:.0f} s"
            )
            await asyncio.sleep(warmup_s)  # connect, create monitored items, baselines
            values0, events0 = counts["values"], counts["events"]
            cpu0, sim_cpu0, t0 = time.process_time(), cpu_seconds(sim.proc.pid), time.monotonic()
            await asyncio.sleep(seconds)  # the measurement window itself
            elapsed = time.monotonic() - t0
            cpu = time.process_time() - cpu0
            values = counts["values"] - values0
            sim_cpu = cpu_seconds(sim.proc.pid) - sim_cpu0
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 30)
                await flusher
            peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"  values acquired/s : {values / elapsed:,.0f} "
                f"(requested {len(tags) / interval_s:,.0f}/s)"
            )
            print(f"  events/s          : {(counts['events'] - events0) / elapsed:,.0f}")
            print(
                f"  agent CPU         : {cpu / elapsed * 100:.0f}% of one core, "
                f"{cpu / max(values, 1) * 1e6:.1f} us per value"
            )
            print(f"  agent RSS         : {rss_mb_self():.0f} MB now, {peak_rss:.0f} MB peak")
            print(f"  simulator CPU     : {sim_cpu / elapsed * 100:.0f}% of one core")
        finally:
            sim.stop()


def rss_mb_self() -> float:
    import os

    return rss_mb(os.getpid())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--protocol", choices=["modbus", "opcua", "opcua-subscribe"], default="modbus"
    )
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.protocol, args.machines, args.interval, args.seconds, args.warmup))


if __name__ == "__main__":
    main()
