"""A simulated plant and whole Lineside pipelines reading it, as separate processes.

:class:`Plant`: one ``plc-sim run`` of tests/e2e/scenario.e2e-line.yaml (OPC UA and
Modbus, ``--wall-timestamps``) and the master data of its shift.

:class:`Pipeline`: edge-agent -> a private Mosquitto -> oee-collector (ingest and API in
one process) -> a fresh migrated database on the shared PostgreSQL. Several pipelines
can read one plant side by side (a PLC serves several clients), each with its own
broker, database and ports, so one of them can lose its broker or its agent while
another one watches the same machines undisturbed.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from _mosquitto import Mosquitto, free_port
from _pg_helpers import migrated_database
from _truth_oee import WallMapping, read_machines

from lineside_demo import configs
from lineside_demo.processes import (
    Child,
    Children,
    collector_child,
    collector_ready,
    http_json,
    http_ok,
    tool,
)
from simulators.model.truth import read_truth
from simulators.scenario.loader import load_scenario
from simulators.scenario.models import expand_machines

SCENARIO = Path(__file__).with_name("scenario.e2e-line.yaml")
SPEED = 60.0
SIM_START = datetime(2026, 6, 1, 5, 40, tzinfo=UTC)  # 20 wall seconds before the shift
SHIFT = configs.SimulatedShift("e2e", clock_time(6, 0), clock_time(7, 0), ())
MICRO_STOP_THRESHOLD_S = 0.5  # wall seconds; every stop of the scenario is longer
MODBUS_POLL_S = 0.05
OPCUA_COUNTER_SAMPLING = {
    "mode": "subscribe",
    "sampling_interval_s": 0,  # every change
    "publishing_interval_s": 0.5,
    "queue_size": 100,  # > parts per publishing interval (~10 at speed 60)
}
LINE = "plant1/body/line2"
# config/mosquitto/mosquitto.conf's queue limits (a subscriber that falls behind loses
# nothing); persistence off: a restart loses sessions, the harder case for the agent
BROKER_EXTRA = "max_queued_messages 100000\nmax_queued_bytes 536870912\n"


def sim_time(hh_mm: str) -> datetime:
    """A simulated clock time of the scenario's day (UTC)."""
    hours, minutes = (int(part) for part in hh_mm.split(":"))
    return SIM_START.replace(hour=hours, minute=minutes)


def wait_for_wall(
    at: datetime, children: list[Children], watch: Callable[[], None] | None = None
) -> None:
    """Until the wall clock shows ``at`` (scenario time, not a condition); fails as soon
    as one of the ``children`` has died."""
    while (left := (at - datetime.now(UTC)).total_seconds()) > 0:
        for group in children:
            dead = group.first_dead()
            if dead is not None:
                raise AssertionError(f"{dead.name} exited:\n{dead.log_tail()}")
        if watch is not None:
            watch()
        time.sleep(min(left, 0.2))


class Plant:
    """The simulated line: launch, then :meth:`wait_ready`; always :meth:`stop`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.opcua_port, self.modbus_port, self.control_port = free_port(), free_port(), free_port()
        self.truth_path = folder / "truth.jsonl"
        self.children = Children()
        self.mapping: WallMapping | None = None
        self.window: tuple[datetime, datetime] | None = None
        self.masterdata_file = folder / "masterdata.yaml"

    def launch(self) -> None:
        self.children.start(
            Child(
                "plc-sim",
                [
                    tool("plc-sim"), "run", str(SCENARIO), "--no-live",
                    "--speed", f"{SPEED:g}", "--start", SIM_START.isoformat(),
                    "--wall-timestamps", "--opcua-security", "none",
                    "--opcua-port", str(self.opcua_port),
                    "--modbus-port", str(self.modbus_port),
                    "--control-port", str(self.control_port),
                    "--data-dir", str(self.folder / "plc-sim"),
                    "--truth", str(self.truth_path),
                ],
                self.folder / "plc-sim.log",
                signal.SIGINT,
            )
        )  # fmt: skip

    def wait_ready(self) -> None:
        """Until the simulator serves; then the shift's window and master data are known."""
        control = f"http://127.0.0.1:{self.control_port}/health"
        self.children.started[0].wait_ready(lambda: http_ok(control), 60, "control endpoint")
        self.mapping, _ = read_machines(read_truth(self.truth_path))
        shift_start = _next_second(self.mapping.wall(sim_time("06:00")))
        self.window = configs.shift_window(shift_start, SPEED, SHIFT)
        configs.write_yaml(self.masterdata_file, self._masterdata(shift_start))

    def wall(self, hh_mm: str) -> datetime:
        assert self.mapping is not None
        return self.mapping.wall(sim_time(hh_mm))

    def stop(self) -> None:
        self.children.stop_all()

    def _masterdata(self, shift_start: datetime) -> dict[str, Any]:
        """One planned shift without breaks; each product's ideal cycle time / speed
        (unrounded, the value the truth's parts are judged with)."""
        products: dict[str, Any] = {}
        for machine in expand_machines(load_scenario(SCENARIO)):
            loc = machine.location
            equipment = f"{loc.site}/{loc.area}/{loc.line}/{machine.name}"
            for product in machine.products:
                ideal = product.ideal_cycle_time_s / SPEED
                entry = products.setdefault(product.id, {"ideal_cycle_time_s": ideal})
                if entry["ideal_cycle_time_s"] != ideal:
                    overrides = entry.setdefault("overrides", [])
                    overrides.append({"equipment": equipment, "ideal_cycle_time_s": ideal})
        return {
            "calendars": {"e2e": configs.compressed_calendar(shift_start, SPEED, SHIFT)},
            "assign": [{"calendar": "e2e"}],
            "products": products,
            "oee": {"micro_stop_threshold_s": MICRO_STOP_THRESHOLD_S},
        }


class Pipeline:
    """Agent, broker, collector and database reading ``plant``: :meth:`launch_agent` as
    soon as the plant is launched, :meth:`start_collector` once it is ready; always
    :meth:`stop`."""

    def __init__(self, name: str, folder: Path, dsn: str, plant: Plant) -> None:
        self.name = name
        self.folder = folder
        self.dsn = dsn
        self.plant = plant
        self.children = Children()
        self.ports = configs.DemoPorts(
            opcua=plant.opcua_port,
            modbus=plant.modbus_port,
            control=plant.control_port,
            agent_health=free_port(),
            collector_health=free_port(),
            api=free_port(),
        )
        self.broker = Mosquitto(folder / "mosquitto", extra=BROKER_EXTRA).start()
        self.agent: Child | None = None
        self.agent_yaml = configs.write_yaml(folder / "agent.yaml", self._agent_document())
        self.api = f"http://127.0.0.1:{self.ports.api}"
        self.token = ""
        self.notes: dict[str, Any] = {}

    def launch_agent(self) -> Child:
        """Start the agent (it retries until the PLCs answer); do not wait for it."""
        self.agent = self.children.start(
            Child(
                "edge-agent",
                [tool("edge-agent"), "run", str(self.agent_yaml)],
                self.folder / "agent.log",
                signal.SIGTERM,
            )
        )
        return self.agent

    def wait_agent_ready(self) -> None:
        assert self.agent is not None
        health = f"http://127.0.0.1:{self.ports.agent_health}/healthz"
        self.agent.wait_ready(lambda: http_ok(health), 60, "health endpoint")

    def start_collector(self) -> None:
        secret = configs.new_hs256_secret()
        collector_doc = configs.collector_document(
            self.ports, "127.0.0.1", self.broker.port, self.plant.masterdata_file, secret
        )
        collector_yaml = configs.write_yaml(
            self.folder / "collector.yaml", collector_doc, private=True
        )
        collector = self.children.start(
            collector_child(
                collector_yaml,
                self.dsn,
                self.folder / "collector.log",
                "--client-id",
                f"e2e-collector-{self.name}",
            )
        )
        health = f"http://127.0.0.1:{self.ports.collector_health}"
        collector.wait_ready(
            lambda: collector_ready(health, self.api), 60, "MQTT subscription and API"
        )
        self.token = _viewer_token(collector_doc)

    def stop(self) -> dict[str, int | None]:
        codes = self.children.stop_all()
        self.broker.stop()
        return codes

    def _agent_document(self) -> dict[str, Any]:
        document = configs.agent_document(
            configs.read_yaml(configs.AGENT_TEMPLATE),
            self.ports,
            "127.0.0.1",
            self.broker.port,
            self.folder / "agent",
        )
        document["agent"]["id"] = f"e2e-{self.name}"
        for equipment in document["equipment"]:
            for tag in equipment["tags"]:
                if equipment["id"] == "pack-1" and tag["role"] != "process_value":
                    # Modbus has no timestamps: poll fast
                    tag["sampling"] = {"mode": "poll", "interval_s": MODBUS_POLL_S}
                elif tag["role"].endswith("_count") and equipment["id"] != "pack-1":
                    # the presses reset their counters on an order change: every value
                    # up to the reset must arrive (docs/configuration.md, counters)
                    tag["sampling"] = OPCUA_COUNTER_SAMPLING
        return document

    # -- faults ------------------------------------------------------------------------

    def kill_agent(self) -> int:
        """SIGKILL the agent (a power cut for its process); its exit status."""
        assert self.agent is not None
        assert self.agent.proc is not None
        self.agent.proc.send_signal(signal.SIGKILL)
        code = self.agent.proc.wait(timeout=10)
        self.children.started.remove(self.agent)
        return code

    def agent_status(self) -> dict[str, Any] | None:
        return http_json(f"http://127.0.0.1:{self.ports.agent_health}/status")

    def wait_until_drained(self, timeout_s: float = 60) -> None:
        """After the window: every event the agent captured is committed (buffer empty)."""
        assert self.plant.window is not None
        wait_for_wall(self.plant.window[1] + timedelta(seconds=2), [self.children])
        deadline = time.monotonic() + timeout_s
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.agent_status() or {}
            if (status.get("buffer") or {}).get("depth_events") == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: agent buffer not empty after {timeout_s} s: {status}")

    # -- answers -----------------------------------------------------------------------

    def oee(self) -> dict[str, Any]:
        window = self.plant.window
        assert window is not None
        answer = httpx.get(
            f"{self.api}/api/v1/oee",
            params={
                "scope": "line",
                "id": LINE,
                "start": window[0].isoformat(),
                "end": window[1].isoformat(),
            },
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def stored_transitions(self, equipment: str) -> list[tuple[datetime, str]]:
        """(start, state) of the equipment's stored state intervals, repeats merged."""
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                "SELECT s.start_time, s.state FROM lineside.state_intervals s"
                " JOIN lineside.equipment e ON e.id = s.equipment_id"
                " WHERE e.equipment = %s ORDER BY s.start_time, s.seq",
                (equipment,),
            ).fetchall()
        merged: list[tuple[datetime, str]] = []
        for start, state in rows:
            if not merged or merged[-1][1] != state:
                merged.append((start, state))
        return merged


def _next_second(at: datetime) -> datetime:
    whole = at.replace(microsecond=0)
    return whole if whole == at else whole + timedelta(seconds=1)


def _viewer_token(collector_doc: dict[str, Any]) -> str:
    from collector.api.auth import Role, create_token
    from collector.config import CollectorConfig

    config = CollectorConfig.model_validate(collector_doc)
    assert config.api is not None
    assert config.api.auth is not None
    return create_token(config.api.auth, subject="e2e", role=Role.VIEWER, sites=["*"], ttl_s=3600)


__all__ = ["LINE", "SPEED", "Pipeline", "Plant", "migrated_database", "sim_time", "wait_for_wall"]
