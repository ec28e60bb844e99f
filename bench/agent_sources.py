"""Benchmark: values per second the agent acquires and turns into events.

Starts ``plc-sim run load-100-machines`` (speed 1) in its own process, builds an agent
configuration for the first N machines (state, counters, order, product and every
process value; 103 tags a machine), and runs the agent's source + derivation +
stamping pipeline in a separate process that loads that configuration from YAML as the
agent does (``bench/_agent_process.py``, which imports no simulator code). Prints
values/s acquired, events/s, agent CPU and RSS, and the simulator's CPU.

    ./lineside bench agent_sources --protocol modbus --machines 100 --interval 0.2
    ./lineside bench agent_sources --protocol opcua --machines 100 --interval 1
    ./lineside bench agent_sources --protocol opcua-subscribe --machines 10
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sim_load import Simulator, cpu_seconds  # noqa: E402

from edge_agent.config.models import AgentConfig  # noqa: E402
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
    protocol: str,
    machines: int,
    interval_s: float,
    sim: Simulator,
    data_dir: Path,
    connections: int = 1,
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
    if connections > 1:  # machine i reads over connection plc-(i mod N)
        for index, entry in enumerate(equipment):
            entry["connection"] = f"plc-{index % connections}"
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
            "connections": [connection]
            if connections == 1
            else [{**connection, "id": f"plc-{i}"} for i in range(connections)],
            "equipment": equipment,
        }
    )


def run(
    protocol: str,
    machines: int,
    interval_s: float,
    seconds: float,
    warmup_s: float,
    connections: int,
) -> None:
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        sim = Simulator(Path(tmp))
        print("starting plc-sim run load-100-machines (speed 1) ...")
        sim.start()
        try:
            config = agent_config(
                protocol, machines, interval_s, sim, Path(tmp) / "agent", connections
            )
            config_path = Path(tmp) / "agent.yaml"
            with config_path.open("w") as out:
                YAML().dump(config.model_dump(mode="json", exclude_none=True), out)
            tag_count = sum(len(e.tags) for e in config.equipment)
            print(
                f"{protocol}: {tag_count:,} tags on {machines} machines over {connections}"
                f" connection(s), every {interval_s} s (requested"
                f" {tag_count / interval_s:,.0f} values/s)",
                flush=True,
            )
            agent = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "bench" / "_agent_process.py"),
                    str(config_path),
                    f"--seconds={seconds}",
                    f"--warmup={warmup_s}",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert agent.stdout is not None
            sim_cpu0 = t0 = 0.0
            for line in agent.stdout:
                if line.startswith("MEASURE start"):
                    sim_cpu0, t0 = cpu_seconds(sim.proc.pid), time.monotonic()
                elif line.startswith("MEASURE end"):
                    sim_cpu = cpu_seconds(sim.proc.pid) - sim_cpu0
                    sim_share = sim_cpu / (time.monotonic() - t0) * 100
                else:
                    print(line, end="", flush=True)
            agent.wait()
            print(f"  simulator CPU     : {sim_share:.0f}% of one core")
        finally:
            sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--protocol", choices=["modbus", "opcua", "opcua-subscribe"], default="modbus"
    )
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument(
        "--connections",
        type=int,
        default=1,
        help="PLC connections to spread the machines over (a real line: one per machine)",
    )
    args = parser.parse_args()
    run(
        args.protocol,
        args.machines,
        args.interval,
        args.seconds,
        args.warmup,
        args.connections,
    )


if __name__ == "__main__":
    main()
