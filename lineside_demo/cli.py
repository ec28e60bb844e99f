"""``lineside-demo``: simulators, agent, collector and API on one machine (Ctrl-C stops)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.live import Live

from lineside_demo import configs
from lineside_demo.live import ApiReader, machine_table, status_line
from lineside_demo.processes import (
    Child,
    Children,
    DemoError,
    collector_child,
    collector_ready,
    http_json,
    http_ok,
    tool,
)
from lineside_demo.services import (
    DEFAULT_DSN,
    DEFAULT_MQTT,
    Services,
    find_or_start,
    free_port,
    preferred_or_free,
)
from simulators.scenario.loader import load_scenario

app = typer.Typer(add_completion=False)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)
REFRESH_S = 2.0
TOKEN_TTL_S = 7 * 86_400
LEAD_WALL_S = 15.0  # wall seconds the simulator runs before the shift starts


@dataclass(frozen=True)
class Running:
    """What the banner and the live table need."""

    api: str
    token: str
    line: str
    shift_start: datetime
    shift_end: datetime


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command()
def main(
    speed: Annotated[
        float, typer.Option(min=1, help="Time acceleration (60: a shift in 8 min)")
    ] = 60.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop by itself after this many seconds")
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option(
            envvar="LINESIDE_DATABASE_URL",
            help=f"PostgreSQL server to use (default {DEFAULT_DSN}); if it does not answer, "
            "an embedded one is started",
        ),
    ] = None,
    mqtt: Annotated[
        str,
        typer.Option(help="MQTT 5 broker host:port; if it does not answer, mosquitto is started"),
    ] = DEFAULT_MQTT,
    data_dir: Annotated[Path, typer.Option(help="Configs, logs, embedded servers")] = Path(
        "var/demo"
    ),
    live: Annotated[bool, typer.Option(help="Live machine table (else a line every 10 s)")] = True,
) -> None:
    """Start the demo line (OPC UA and Modbus PLCs), an edge agent, the collector and its
    API; print where everything is and a live table of the machines."""
    data_dir = data_dir.resolve()
    children = Children()
    services: Services | None = None
    code = 0
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        services = find_or_start(dsn or DEFAULT_DSN, mqtt, data_dir, children, out.print)
        running = _start(services, speed, data_dir, children)
        _watch(running, children, speed, duration, live)
    except KeyboardInterrupt:
        out.print("stopping...")
    except DemoError as exc:
        err.print(f"lineside-demo: {exc}", markup=False)
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut cleanup
        codes = children.stop_all()
        if services is not None:
            services.stop()
        signal.signal(signal.SIGTERM, previous)
    if codes:
        out.print("stopped: " + ", ".join(f"{name} (exit {c})" for name, c in codes.items()))
    raise typer.Exit(code)


def _start(services: Services, speed: float, data_dir: Path, children: Children) -> Running:
    scenario = load_scenario(configs.SCENARIO)
    ports = configs.DemoPorts(
        opcua=preferred_or_free(4840),
        modbus=preferred_or_free(5020),
        control=free_port(),
        agent_health=free_port(),
        collector_health=free_port(),
        api=preferred_or_free(8080),
    )
    zone = ZoneInfo(scenario.timezone)
    shift_sim_start = configs.simulated_start(scenario, datetime.now(zone).date())
    # The simulator starts a little before the shift (simulated), so that the agent and
    # the collector are up when the shift begins: no minutes of "no data" in its OEE.
    lead_s = min(LEAD_WALL_S, 5 * 3600 / speed)  # stay on the shift's simulated day
    sim_start = shift_sim_start - timedelta(seconds=lead_s * speed)
    logs = data_dir / "logs"
    control = f"http://127.0.0.1:{ports.control}"
    sim = children.start(
        Child(
            "plc-sim",
            [
                tool("plc-sim"),
                "run",
                configs.SCENARIO,
                "--no-live",
                "--speed",
                f"{speed:g}",
                "--start",
                sim_start.isoformat(),
                "--wall-timestamps",
                "--opcua-port",
                str(ports.opcua),
                "--modbus-port",
                str(ports.modbus),
                "--control-port",
                str(ports.control),
                "--opcua-security",
                "none",
                "--data-dir",
                str(data_dir / "plc-sim"),
                "--truth",
                str(data_dir / "truth.jsonl"),
            ],
            logs / "plc-sim.log",
            signal.SIGINT,
        )
    )
    sim.wait_ready(lambda: http_ok(f"{control}/health"), 60, "control endpoint")
    wall_start = _wall_time_of_sim_start(control, sim_start, speed) + timedelta(seconds=lead_s)

    masterdata = configs.write_yaml(
        data_dir / "masterdata.yaml", configs.masterdata_document(scenario, wall_start, speed)
    )
    collector_doc = configs.collector_document(
        ports, services.mqtt_host, services.mqtt_port, masterdata, configs.new_hs256_secret()
    )
    collector_yaml = configs.write_yaml(data_dir / "collector.yaml", collector_doc, private=True)
    agent_dir = data_dir / "agent"
    shutil.rmtree(agent_dir, ignore_errors=True)  # each demo starts with an empty buffer
    agent_doc = configs.agent_document(
        configs.read_yaml(configs.AGENT_TEMPLATE),
        ports,
        services.mqtt_host,
        services.mqtt_port,
        agent_dir,
    )
    agent_yaml = configs.write_yaml(data_dir / "agent.yaml", agent_doc)

    collector_health = f"http://127.0.0.1:{ports.collector_health}"
    api = f"http://127.0.0.1:{ports.api}"
    collector = children.start(
        collector_child(
            collector_yaml,
            services.database_url,
            logs / "collector.log",
            "--client-id",
            f"lineside-demo-{secrets.token_hex(3)}",
        )
    )
    collector.wait_ready(
        lambda: collector_ready(collector_health, api), 120, "MQTT subscription and API"
    )
    agent = children.start(
        Child("edge-agent", [tool("edge-agent"), "run", str(agent_yaml)], logs / "agent.log", 15)
    )
    agent_health = f"http://127.0.0.1:{ports.agent_health}"
    agent.wait_ready(lambda: http_ok(f"{agent_health}/healthz"), 60, "health endpoint")

    token = _viewer_token(collector_doc)
    shift_start, shift_end = configs.shift_window(wall_start, speed)
    running = Running(api, token, configs.line_id(scenario), shift_start, shift_end)
    out.print(
        f"[bold]Lineside demo[/] ({speed:g}x: one {_sim_length()} shift plays in "
        f"{(shift_end - shift_start).total_seconds() / 60:.1f} min)"
    )
    out.print(f"  API docs      {api}/docs", markup=False)
    out.print(f"  viewer token  {token}", markup=False)
    out.print(
        f'  try           TOKEN=<viewer token>; curl -H "Authorization: Bearer $TOKEN" '
        f"{api}/api/v1/states/current",
        markup=False,
    )
    out.print(
        f"  metrics       {api}/metrics  {collector_health}/metrics  {agent_health}/metrics",
        markup=False,
    )
    out.print(f"  health        {collector_health}/status  {agent_health}/status", markup=False)
    out.print(
        f"  PLCs          opc.tcp://127.0.0.1:{ports.opcua}  modbus 127.0.0.1:{ports.modbus}"
        f"  control {control}",
        markup=False,
    )
    out.print(
        f"  MQTT          {services.mqtt_host}:{services.mqtt_port} ({services.mqtt_origin})",
        markup=False,
    )
    out.print(
        f"  PostgreSQL    database {configs_db(services)} ({services.database_origin})",
        markup=False,
    )
    out.print(f"  files         {data_dir} (configs, logs/, truth.jsonl)", markup=False)
    out.print(
        "  pids          " + " ".join(f"{c.name}={c.pid}" for c in children.started), markup=False
    )
    out.print("Ctrl-C stops everything.")
    return running


def configs_db(services: Services) -> str:
    """The demo database's name and host, without any password."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(services.database_url)
    return f"{parts.get('dbname')} on {parts.get('host', 'localhost')}"


def _sim_length() -> str:
    start, end = configs.shift_window(datetime.now(UTC), 1.0)
    return f"{(end - start).total_seconds() / 3600:g} h"


def _wall_time_of_sim_start(control: str, sim_start: datetime, speed: float) -> datetime:
    """When (wall clock) the simulator was at ``sim_start``: its clock's origin."""
    from simulators.model.truth import parse_ts

    status = http_json(f"{control}/status")
    if status is None:
        raise DemoError(f"plc-sim: {control}/status does not answer")
    sim_now = parse_ts(status["sim_time"])
    wall_now = datetime.now(UTC)
    return wall_now - timedelta(seconds=(sim_now - sim_start).total_seconds() / speed)


def _viewer_token(collector_doc: dict) -> str:
    from collector.api.auth import Role, create_token
    from collector.config import CollectorConfig

    config = CollectorConfig.model_validate(collector_doc)
    assert config.api is not None
    assert config.api.auth is not None
    return create_token(
        config.api.auth, subject="demo-viewer", role=Role.VIEWER, sites=["*"], ttl_s=TOKEN_TTL_S
    )


def _watch(
    running: Running, children: Children, speed: float, duration: float | None, live: bool
) -> None:
    """Refresh the table until Ctrl-C, the duration, or a child dying (DemoError)."""
    reader = ApiReader(running.api, running.token, running.line)
    deadline = time.monotonic() + duration if duration else None
    display: Live | None = None
    last_line = 0.0
    try:
        if live:
            display = Live(console=out, refresh_per_second=1)
            display.start()
        while deadline is None or time.monotonic() < deadline:
            dead = children.first_dead()
            if dead is not None:
                raise DemoError(
                    f"{dead.name} stopped unexpectedly (exit {dead.exited()}); its log "
                    f"({dead.log}) ends:\n{dead.log_tail()}"
                )
            rows = reader.rows(running.shift_start, running.shift_end)
            if display is not None:
                display.update(machine_table(rows, running.shift_start, running.shift_end, speed))
            elif time.monotonic() - last_line >= 10:
                last_line = time.monotonic()
                out.print(
                    status_line(rows) or "waiting for the first events",
                    markup=False,
                )
            time.sleep(REFRESH_S)
    finally:
        if display is not None:
            with contextlib.suppress(Exception):
                display.stop()
        reader.close()
