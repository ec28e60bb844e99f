"""The demo's configuration files, built as plain documents (pure: no I/O but ``write_yaml``).

Time compression: every event stays on the wall clock (the simulator stamps OPC UA
values with wall time, Modbus values are stamped by the agent), so instead of moving
the events the plant's calendar is compressed: the demo's shift starts when the
simulated shift starts and lasts (simulated length / speed); breaks, ideal cycle times
and the micro-stop threshold are divided by the speed the same way.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML

from simulators.scenario.models import Scenario, expand_machines

SCENARIO = "line-3-machines"
AGENT_TEMPLATE = Path(__file__).resolve().parents[1] / "config" / "agent.line-3-machines.yaml"
AGENT_ID = "demo-pc1"
COLLECTOR_GROUP = "lineside-demo"  # its own share group: no other collector splits its messages
DEFAULT_MICRO_STOP_THRESHOLD_S = 120.0
CALENDAR = "demo-shift"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SimulatedShift:
    """The shift the scenario plays, in simulated local clock times of its timezone."""

    name: str
    start: time
    end: time
    breaks: tuple[tuple[time, time], ...]


# line-3-machines: every machine starts near 06:00, breaks at 09:00 (15 min) and 12:00
# (30 min), ends at 14:00; keep in step with simulators/scenarios/line-3-machines.yaml.
DEMO_SHIFT = SimulatedShift(
    "early",
    time(6, 0),
    time(14, 0),
    ((time(9, 0), time(9, 15)), (time(12, 0), time(12, 30))),
)


@dataclass(frozen=True)
class DemoPorts:
    """Every TCP port the demo's children listen on (all on 127.0.0.1)."""

    opcua: int
    modbus: int
    control: int
    agent_health: int
    collector_health: int
    api: int


def simulated_start(scenario: Scenario, day: date, shift: SimulatedShift = DEMO_SHIFT) -> datetime:
    """The simulated instant (UTC) the shift starts on ``day`` in the scenario's timezone."""
    local = datetime.combine(day, shift.start).replace(tzinfo=ZoneInfo(scenario.timezone))
    return local.astimezone(UTC)


def _seconds_between(first: time, second: time) -> float:
    delta = datetime.combine(date.min, second) - datetime.combine(date.min, first)
    return delta.total_seconds() % 86_400


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M:%S")


def compressed_calendar(
    wall_start: datetime, speed: float, shift: SimulatedShift = DEMO_SHIFT
) -> dict[str, Any]:
    """A UTC calendar whose one shift starts at ``wall_start`` and lasts shift / speed.

    ``wall_start`` is rounded down to the second (calendars have second resolution).
    """
    start = wall_start.astimezone(UTC).replace(microsecond=0)

    def wall(sim_clock: time) -> datetime:
        return start + timedelta(seconds=_seconds_between(shift.start, sim_clock) / speed)

    end = wall(shift.end) if shift.end != shift.start else start + timedelta(days=1) / speed
    return {
        "timezone": "UTC",
        "shifts": [
            {
                "name": shift.name,
                "days": WEEKDAYS[start.weekday()],
                "start": _clock(start),
                "end": _clock(end),
                "breaks": [
                    {"start": _clock(wall(first)), "end": _clock(wall(last))}
                    for first, last in shift.breaks
                ],
            }
        ],
    }


def shift_window(
    wall_start: datetime, speed: float, shift: SimulatedShift = DEMO_SHIFT
) -> tuple[datetime, datetime]:
    """(start, end) in UTC of the compressed shift, as the calendar describes it."""
    start = wall_start.astimezone(UTC).replace(microsecond=0)
    return start, start + timedelta(seconds=_seconds_between(shift.start, shift.end) / speed)


def scaled_products(scenario: Scenario, speed: float) -> dict[str, Any]:
    """Master-data products: each product's ideal cycle time / speed, with per-equipment
    overrides where a machine's own ideal cycle time differs from the first one seen."""
    products: dict[str, Any] = {}
    for machine in expand_machines(scenario):
        loc = machine.location
        equipment = f"{loc.site}/{loc.area}/{loc.line}/{machine.name}"
        for product in machine.products:
            scaled = round(product.ideal_cycle_time_s / speed, 6)
            entry = products.setdefault(product.id, {"ideal_cycle_time_s": scaled, "overrides": []})
            if scaled != entry["ideal_cycle_time_s"]:
                entry["overrides"].append({"equipment": equipment, "ideal_cycle_time_s": scaled})
    return products


def masterdata_document(scenario: Scenario, wall_start: datetime, speed: float) -> dict[str, Any]:
    """The demo's master data: compressed calendar, scaled cycle times and micro-stops."""
    return {
        "calendars": {CALENDAR: compressed_calendar(wall_start, speed)},
        "assign": [{"calendar": CALENDAR}],
        "products": scaled_products(scenario, speed),
        "oee": {"micro_stop_threshold_s": round(DEFAULT_MICRO_STOP_THRESHOLD_S / speed, 6)},
    }


def agent_document(
    template: dict[str, Any], ports: DemoPorts, mqtt_host: str, mqtt_port: int, data_dir: Path
) -> dict[str, Any]:
    """The shipped line-3 agent config pointed at the demo's simulator, broker and folder,
    without ideal cycle times (the master data's scaled ones apply instead)."""
    document = dict(template)
    document["agent"] = {**template["agent"], "id": AGENT_ID, "data_dir": str(data_dir)}
    document.pop("buffer", None)  # defaults: the demo's buffer is small
    document["mqtt"] = {"host": mqtt_host, "port": mqtt_port, "ack_timeout_s": 5}
    document["health"] = {"listen": f"127.0.0.1:{ports.agent_health}"}
    connections = []
    for connection in template["connections"]:
        connection = dict(connection)
        if "opcua" in connection:
            endpoint = f"opc.tcp://127.0.0.1:{ports.opcua}"
            connection["opcua"] = {**connection["opcua"], "endpoint": endpoint}
        if "modbus" in connection:
            tcp = {"host": "127.0.0.1", "port": ports.modbus}
            connection["modbus"] = {**connection["modbus"], "tcp": tcp}
        connections.append(connection)
    document["connections"] = connections
    document["equipment"] = [
        {
            **equipment,
            "tags": [
                {k: v for k, v in tag.items() if k != "ideal_cycle_times_s"}
                for tag in equipment["tags"]
            ],
        }
        for equipment in template["equipment"]
    ]
    return document


def new_hs256_secret() -> str:
    """A random API signing secret (48 bytes, longer than HS256's 32-byte minimum)."""
    return secrets.token_urlsafe(48)


def collector_document(
    ports: DemoPorts, mqtt_host: str, mqtt_port: int, masterdata_file: Path, hs256_secret: str
) -> dict[str, Any]:
    """Collector with the API inside ``run``, OEE hours on, and its own share group."""
    return {
        "mqtt": {
            "host": mqtt_host,
            "port": mqtt_port,
            "group": COLLECTOR_GROUP,
            "session_expiry_s": 60,  # a stopped demo leaves no long-lived session behind
        },
        "ingest": {"max_wait_ms": 5},
        "health": {"listen": f"127.0.0.1:{ports.collector_health}"},
        "masterdata_file": str(masterdata_file),
        "oee_hours": {"enabled": True, "interval_s": 30},
        "api": {
            "listen": f"127.0.0.1:{ports.api}",
            "serve_with_ingest": True,
            "docs": True,
            "auth": {"algorithm": "HS256", "hs256_secret": hs256_secret},
        },
    }


def line_id(scenario: Scenario) -> str:
    """The API id (site/area/line) of the scenario's line."""
    loc = expand_machines(scenario)[0].location
    return f"{loc.site}/{loc.area}/{loc.line}"


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file as plain data."""
    return YAML(typ="safe").load(path.read_text())


def write_yaml(path: Path, document: dict[str, Any], private: bool = False) -> Path:
    """Write ``document``; ``private`` files (they hold a secret) are readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600 if private else 0o644)
    if private:
        path.chmod(0o600)
    yaml = YAML()
    yaml.default_flow_style = False
    with path.open("w") as out:
        yaml.dump(document, out)
    return path
