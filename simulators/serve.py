"""Run a scenario: simulation loop + OPC UA and Modbus faces + control endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from lineside_common.gctune import settle_long_lived_objects
from simulators.errors import ScenarioError
from simulators.faults.commands import FaultCommand
from simulators.faults.control_api import build_control_app
from simulators.faults.controller import FaultController
from simulators.faults.state import FaultState
from simulators.model.clock import AcceleratedClock
from simulators.model.truth import TruthWriter
from simulators.runtime import Face, Simulation, default_start, timeline_problems
from simulators.scenario.models import Scenario

log = logging.getLogger("lineside.sim")


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    opcua_port: int | None = 4840
    modbus_port: int | None = 5020
    modbus_serial: str | None = None
    modbus_baudrate: int = 19200
    control_port: int | None = 8470
    speed: float = 1.0
    seed: int | None = None
    start: datetime | None = None
    tick_s: float = 0.1
    duration_s: float | None = None
    exit_at_end: bool = False
    data_dir: Path = Path("var/plc-sim")
    truth_path: Path | None = None
    opcua_policies: list[str] | None = None
    opcua_users: dict[str, str] = field(default_factory=dict)
    faults: list[FaultCommand] = field(default_factory=list)
    wall_timestamps: bool = False  # OPC UA SourceTimestamps on the wall clock


@dataclass
class RunningSimulator:
    """Everything a running simulator consists of (tests use it directly)."""

    sim: Simulation
    faces: list[Face]
    controller: FaultController
    truth_path: Path
    control_url: str | None
    stop_event: asyncio.Event
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _control: uvicorn.Server | None = None

    async def stop(self) -> None:
        self.stop_event.set()
        await self.controller.cancel_pending()
        if self._control is not None:
            self._control.should_exit = True
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for face in self.faces:
            await face.stop()
        self.sim.close()


def build_faces(sim: Simulation, options: ServeOptions) -> list[Face]:
    faces: list[Face] = []
    if options.opcua_port is not None:
        from simulators.faces.opcua import OpcUaFace, OpcUaSecurity, SecurityPolicy
        from simulators.scenario.certificates import read_certificate_der

        security = OpcUaSecurity(
            policies=options.opcua_policies or tuple(SecurityPolicy),
            users=options.opcua_users,
            user_certificates=[
                read_certificate_der(path) for path in sim.scenario.opcua.user_certificates
            ],
        )
        source_time = None
        if options.wall_timestamps and isinstance(sim.clock, AcceleratedClock):
            source_time = sim.clock.to_wall
        faces.append(
            OpcUaFace(
                sim,
                host=options.host,
                port=options.opcua_port,
                faults=FaultState(),
                security=security,
                cert_dir=options.data_dir / "pki",
                source_time=source_time,
            )
        )
    if options.modbus_port is not None or options.modbus_serial is not None:
        from simulators.faces.modbus import ModbusFace

        faces.append(
            ModbusFace(
                sim,
                host=options.host,
                port=options.modbus_port if options.modbus_port is not None else 5020,
                faults=FaultState(),
                serial_port=options.modbus_serial,
                baudrate=options.modbus_baudrate,
            )
        )
    return faces


async def start_simulator(scenario: Scenario, options: ServeOptions) -> RunningSimulator:
    """Build and start everything; returns once all servers listen."""
    wall_now = datetime.now(UTC)
    start = options.start or default_start(scenario, wall_now)
    problems = timeline_problems(scenario, start)
    if problems:
        from simulators.errors import ConfigIssue

        raise ScenarioError(
            [ConfigIssue(scenario.scenario, None, None, "timeline", p) for p in problems]
        )
    truth_path = options.truth_path or (
        options.data_dir / "truth" / f"{scenario.scenario}-{wall_now:%Y%m%dT%H%M%SZ}.jsonl"
    )
    clock = AcceleratedClock(start, options.speed)
    sim = Simulation(scenario, clock, start, TruthWriter(truth_path), options.seed, options.speed)
    sim.step()
    faces = build_faces(sim, options)
    for face in faces:
        await face.start()
        sim.subscribe(face.apply)
    settle_long_lived_objects()  # the address space is large and long-lived
    controller = FaultController(sim, faces)
    stop_event = asyncio.Event()
    running = RunningSimulator(sim, faces, controller, truth_path, None, stop_event)
    running._tasks.append(asyncio.create_task(sim.run(options.tick_s, stop_event)))
    if options.control_port is not None:
        app = build_control_app(sim, controller, faces)
        config = uvicorn.Config(
            app, host=options.host, port=options.control_port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        running._control = server
        running._tasks.append(asyncio.create_task(server.serve()))
        while not server.started:
            if running._tasks[-1].done():
                await running.stop()
                raise OSError(f"control endpoint could not listen on port {options.control_port}")
            await asyncio.sleep(0.01)
        port = (
            server.servers[0].sockets[0].getsockname()[1]
            if server.servers
            else options.control_port
        )
        running.control_url = f"http://{options.host}:{port}"
    for command in options.faults:
        await controller.submit(command)
    return running


async def serve_until_stopped(
    scenario: Scenario,
    options: ServeOptions,
    on_started: Callable[[RunningSimulator], None] | None = None,
    on_tick: Callable[[RunningSimulator], None] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM, the duration, or (with exit_at_end) the scenario end."""
    running = await start_simulator(scenario, options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, running.stop_event.set)
    if on_started:
        on_started(running)
    deadline = loop.time() + options.duration_s if options.duration_s else None
    try:
        while not running.stop_event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.stop_event.wait(), timeout=0.5)
            if on_tick:
                on_tick(running)
            if deadline is not None and loop.time() >= deadline:
                break
            if options.exit_at_end and running.sim.all_ended:
                break
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await running.stop()
