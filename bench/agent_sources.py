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
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

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
    sims: list[Simulator],
    data_dir: Path,
    connections: int = 1,
) -> AgentConfig:
    """Machines split evenly over ``sims``; each simulator read over ``connections``."""
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
    connection_list = []
    per_sim = math.ceil(machines / len(sims))
    for k, sim in enumerate(sims):
        scenario = load_scenario(sim.scenario)
        ids = [f"plc-{k}-{j}" for j in range(connections)]
        for index, machine in enumerate(expand_machines(scenario)[:per_sim]):
            tags = [tag_entry(tag, scenario, opcua, sampling) for tag in machine_tags(machine)]
            equipment.append(
                {
                    "id": machine.name,
                    "connection": ids[index % connections],
                    "tags": [t for t in tags if t is not None],
                }
            )
        for connection_id in ids:
            connection_list.append(
                {
                    "id": connection_id,
                    "opcua": {
                        "endpoint": f"opc.tcp://127.0.0.1:{sim.opcua_port}",
                        "timeout_s": 30,
                        "watchdog_interval_s": 10,
                    },
                }
                if opcua
                else {
                    "id": connection_id,
                    "modbus": {
                        "tcp": {"host": "127.0.0.1", "port": sim.modbus_port},
                        "timeout_s": 5,
                    },
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
            "connections": connection_list,
            "equipment": equipment,
        }
    )


def tag_entry(tag: Any, scenario: Any, opcua: bool, sampling: dict) -> dict | None:
    role = ROLE_OF.get(tag.name) or (
        "process_value" if tag.signal.startswith(("ai.", "pv.")) else None
    )
    if role is None:
        return None
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
    return entry


def partial_scenarios(
    directory: Path, machines: int, count: int, *, staggered: bool = False
) -> list[str]:
    """``count`` copies of the load scenario, each with its share of the machines.

    Several simulator processes stand for several PLCs: one Python OPC UA server on
    these two cores serves about 11k values/s, less than the agent can poll.
    ``staggered``: the machines' process values change spread over each second
    (``replicas.spread_value_offsets``) instead of all at the whole second.
    """
    if count == 1 and not staggered:
        return ["load-100-machines"]
    source = ROOT / "simulators" / "scenarios" / "load-100-machines.yaml"
    yaml = YAML()
    paths = []
    for k in range(count):
        document = yaml.load(source.read_text())
        document["scenario"] = f"load-part-{k}"
        document["seed"] = 100 + k
        replicas = document["machines"][0]["replicas"]
        replicas["count"] = math.ceil(machines / count)
        replicas["name"] = f"p{k}-cell-{{n:03d}}"
        if staggered:
            replicas["spread_value_offsets"] = True
        path = directory / f"load-part-{k}.yaml"
        with path.open("w") as out:
            yaml.dump(document, out)
        paths.append(str(path))
    return paths


def run(
    protocol: str,
    machines: int,
    interval_s: float,
    seconds: float,
    warmup_s: float,
    connections: int,
    simulators: int,
    full_agent: bool = False,
) -> None:
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        sims = []
        for k, scenario in enumerate(partial_scenarios(Path(tmp), machines, simulators)):
            sim_dir = Path(tmp) / f"sim-{k}"
            sim_dir.mkdir()
            sims.append(Simulator(sim_dir, scenario))
        try:
            print(f"starting {simulators} plc-sim process(es) (speed 1) ...", flush=True)
            for sim in sims:
                sim.start()
            config = agent_config(
                protocol, machines, interval_s, sims, Path(tmp) / "agent", connections
            )
            config_path = Path(tmp) / "agent.yaml"
            with config_path.open("w") as out:
                YAML().dump(config.model_dump(mode="json", exclude_defaults=True), out)
            tag_count = sum(len(e.tags) for e in config.equipment)
            print(
                f"{protocol}: {tag_count:,} tags on {len(config.equipment)} machines in"
                f" {simulators} simulator(s), {len(config.connections)} connection(s), every"
                f" {interval_s} s (requested {tag_count / interval_s:,.0f} values/s)",
                flush=True,
            )
            if full_agent:
                run_full_agent(config, Path(tmp), seconds, warmup_s, sims)
                return
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
            sim_cpu0, t0, sim_share = 0.0, 0.0, 0.0
            for line in agent.stdout:
                if line.startswith("MEASURE start"):
                    sim_cpu0 = sum(cpu_seconds(sim.proc.pid) for sim in sims)
                    t0 = time.monotonic()
                elif line.startswith("MEASURE end"):
                    sim_cpu = sum(cpu_seconds(sim.proc.pid) for sim in sims) - sim_cpu0
                    sim_share = sim_cpu / (time.monotonic() - t0) * 100
                else:
                    print(line, end="", flush=True)
            agent.wait()
            print(f"  simulator CPU     : {sim_share:.0f}% of one core (all simulators)")
        finally:
            for sim in sims:
                sim.stop()


def run_full_agent(
    config: AgentConfig, tmp: Path, seconds: float, warmup_s: float, sims: list[Simulator]
) -> None:
    """``edge-agent run`` itself (buffer, forwarder to a private Mosquitto, health server)
    on the same configuration: its RSS and CPU as a line PC would see them."""
    from _mosquitto import Mosquitto, free_port

    health_port = free_port()
    with Mosquitto(tmp / "mosquitto") as broker:
        document = config.model_dump(mode="json", exclude_defaults=True)
        # broker acks: no collector here to confirm; the forwarder deletes on PUBACK
        document["mqtt"] = {"host": "127.0.0.1", "port": broker.port, "ack_mode": "broker"}
        document["health"] = {"listen": f"127.0.0.1:{health_port}"}
        path = tmp / "agent-full.yaml"
        with path.open("w") as out:
            YAML().dump(document, out)
        agent = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "edge-agent"), "run", str(path), "--log-level", "warning"]
        )
        try:
            time.sleep(warmup_s)  # connect, subscribe, baselines (a fixed warm-up, as above)
            captured0, cpu0 = _captured(health_port), cpu_seconds(agent.pid)
            sim_cpu0 = sum(cpu_seconds(sim.proc.pid) for sim in sims)
            t0 = time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - t0
            captured = _captured(health_port) - captured0
            cpu = cpu_seconds(agent.pid) - cpu0
            sim_cpu = sum(cpu_seconds(sim.proc.pid) for sim in sims) - sim_cpu0
            rss, peak = _rss_mb(agent.pid, "VmRSS"), _rss_mb(agent.pid, "VmHWM")
        finally:
            agent.terminate()
            agent.wait(60)
    print(f"  full agent        : edge-agent run (buffer, forwarder, health), pid {agent.pid}")
    print(f"  events captured/s : {captured / elapsed:,.0f} (committed to the buffer)")
    print(f"  agent CPU         : {cpu / elapsed * 100:.0f}% of one core")
    print(f"  agent RSS         : {rss:.0f} MB now, {peak:.0f} MB peak")
    print(f"  simulator CPU     : {sim_cpu / elapsed * 100:.0f}% of one core (all simulators)")


def _captured(port: int) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as answer:
        return int(json.loads(answer.read())["buffer"]["captured_events_total"])


def _rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


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
    parser.add_argument(
        "--simulators",
        type=int,
        default=1,
        help="simulator processes to split the machines over (several PLCs)",
    )
    parser.add_argument(
        "--full-agent",
        action="store_true",
        help="run edge-agent run itself (buffer, forwarder, health) instead of the "
        "acquisition part alone",
    )
    args = parser.parse_args()
    parser_args = (args.protocol, args.machines, args.interval, args.seconds, args.warmup)
    run(*parser_args, args.connections, args.simulators, args.full_agent)


if __name__ == "__main__":
    main()
