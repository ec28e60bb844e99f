"""``plc-sim``: run, inspect and break simulated PLCs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from simulators.errors import FaultError, ScenarioError, ScenarioNotFoundError
from simulators.faults.commands import FaultCommand, parse_fault_spec
from simulators.scenario.loader import builtin_scenarios, load_scenario
from simulators.scenario.models import Scenario, expand_machines
from simulators.tags import machine_tags

app = typer.Typer(
    help="Lineside PLC simulators: OPC UA and Modbus machines from YAML scenarios.",
    no_args_is_help=True,
    add_completion=False,
)
fault_app = typer.Typer(
    help="Inject faults into a running simulator (via its control endpoint).", no_args_is_help=True
)
app.add_typer(fault_app, name="fault")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_CONFIG = 2
PASSWORD_ENV = "PLC_SIM_OPCUA_PASSWORD"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("asyncua", "pymodbus", "uvicorn", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)


def _load(scenario: str) -> Scenario:
    try:
        return load_scenario(scenario)
    except ScenarioError as exc:
        err.print(exc.report("invalid scenario"), highlight=False, markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    except ScenarioNotFoundError as exc:
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(EXIT_CONFIG) from None


@app.command("list")
def list_scenarios() -> None:
    """List the scenarios shipped in simulators/scenarios/."""
    table = Table("name", "machines", "tags", "mode", "description")
    for name, path in builtin_scenarios().items():
        scenario = _load(str(path))
        machines = expand_machines(scenario)
        modes = sorted({"scripted" if m.timeline is not None else "random" for m in machines})
        tags = sum(len(machine_tags(m)) for m in machines)
        table.add_row(name, str(len(machines)), str(tags), "+".join(modes), scenario.description)
    out.print(table)


@app.command()
def validate(scenario: Annotated[str, typer.Argument(help="Scenario name or YAML file")]) -> None:
    """Check a scenario file; exit 2 with file:line and field path on errors."""
    loaded = _load(scenario)
    from simulators.runtime import default_start, timeline_problems

    problems = timeline_problems(loaded, default_start(loaded, datetime.now(UTC)))
    if problems:
        for problem in problems:
            err.print(f"{scenario}: timeline: {problem}", highlight=False, markup=False)
        raise typer.Exit(EXIT_CONFIG)
    out.print(f"{scenario}: ok ({len(expand_machines(loaded))} machines)")


@app.command()
def tags(
    scenario: Annotated[str, typer.Argument(help="Scenario name or YAML file")],
    machine: Annotated[str | None, typer.Option(help="Only this machine")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
) -> None:
    """Every tag with its OPC UA node id and Modbus address."""
    loaded = _load(scenario)
    rows = []
    for cfg in expand_machines(loaded):
        if machine and cfg.name != machine:
            continue
        for tag in machine_tags(cfg):
            node = f"s={tag.opcua_id}" if tag.opcua_id else ""
            if tag.is_command and tag.opcua_id:
                node += " (method)"
            rows.append(
                {
                    "machine": cfg.name,
                    "tag": tag.name,
                    "type": tag.data_type.value,
                    "opcua": node
                    if fmt == "table" or not node
                    else f"nsu={loaded.namespace_uri};{node}",
                    "modbus": tag.modbus.render() if tag.modbus else "",
                    "unit": tag.unit,
                }
            )
    if machine and not rows:
        err.print(f"no machine {machine!r} in {scenario}")
        raise typer.Exit(EXIT_CONFIG)
    if fmt == "json":
        out.print_json(json.dumps(rows))
    elif fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = Table(
            "machine",
            "tag",
            "type",
            "OPC UA node id",
            "Modbus",
            "unit",
            title=f"OPC UA namespace: nsu={loaded.namespace_uri} "
            "(HR holding register, IR input register, DI discrete input)",
        )
        for row in rows:
            table.add_row(*row.values())
        out.print(table)


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="Scenario name (plc-sim list) or YAML file")],
    opcua_port: Annotated[int, typer.Option(help="OPC UA port")] = 4840,
    modbus_port: Annotated[int, typer.Option(help="Modbus TCP port")] = 5020,
    modbus_serial: Annotated[
        str | None, typer.Option(help="Serve Modbus RTU on this serial device instead of TCP")
    ] = None,
    baudrate: Annotated[int, typer.Option(help="RTU baud rate")] = 19200,
    no_opcua: Annotated[bool, typer.Option("--no-opcua", help="Do not serve OPC UA")] = False,
    no_modbus: Annotated[bool, typer.Option("--no-modbus", help="Do not serve Modbus")] = False,
    control_port: Annotated[int, typer.Option(help="Control endpoint port (0: none)")] = 8470,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    speed: Annotated[float, typer.Option(help="Time acceleration, e.g. 60 = 1 h per minute")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed")] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="Simulated start (ISO 8601 with offset); default: today at the first "
            "timeline time, or now in random mode"
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many wall seconds")
    ] = None,
    exit_at_end: Annotated[bool, typer.Option(help="Stop when every timeline has ended")] = False,
    tick: Annotated[float, typer.Option(help="Wall seconds between model steps")] = 0.1,
    data_dir: Annotated[Path, typer.Option(help="Certificates and truth logs")] = Path(
        "var/plc-sim"
    ),
    truth: Annotated[Path | None, typer.Option(help="Ground-truth JSONL path")] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Fault to inject, e.g. 'after 30s hang 10s on modbus' (repeatable)"),
    ] = None,
    opcua_security: Annotated[
        str | None,
        typer.Option(
            help="Comma list of endpoint policies: none, basic256sha256, aes256sha256rsapss "
            "(default: all)"
        ),
    ] = None,
    opcua_user: Annotated[
        str | None, typer.Option(help=f"Require this OPC UA user; password from ${PASSWORD_ENV}")
    ] = None,
    wall_timestamps: Annotated[
        bool,
        typer.Option(
            help="OPC UA SourceTimestamps on the wall clock, not the accelerated simulated "
            "clock (the truth log keeps simulated time); used by lineside-demo"
        ),
    ] = False,
    live: Annotated[bool, typer.Option(help="Live machine table (when on a terminal)")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve a scenario's machines over OPC UA and Modbus until Ctrl-C."""
    from simulators.serve import ServeOptions, serve_until_stopped

    _setup_logging(verbose)
    loaded = _load(scenario)
    start_at = _parse_start(start)
    try:
        commands: list[FaultCommand] = [parse_fault_spec(spec) for spec in fault or []]
    except FaultError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    users: dict[str, str] = {}
    if opcua_user:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            err.print(f"--opcua-user needs the password in the {PASSWORD_ENV} environment variable")
            raise typer.Exit(EXIT_CONFIG)
        users[opcua_user] = password
    policies = [p.strip() for p in opcua_security.split(",")] if opcua_security else None
    if policies:
        from simulators.faces.opcua import OpcUaSecurity  # deferred: heavy import
        from simulators.scenario.certificates import read_certificate_der

        try:  # unknown policies; user certificates without a secure endpoint
            certificates = [read_certificate_der(p) for p in loaded.opcua.user_certificates]
            OpcUaSecurity(policies, users, certificates)
        except ValueError as exc:
            err.print(f"--opcua-security: {exc}", markup=False)
            raise typer.Exit(EXIT_CONFIG) from None
    options = ServeOptions(
        host=host,
        opcua_port=None if no_opcua else opcua_port,
        modbus_port=None if no_modbus or modbus_serial else modbus_port,
        modbus_serial=None if no_modbus else modbus_serial,
        modbus_baudrate=baudrate,
        control_port=control_port or None,
        speed=speed,
        seed=seed,
        start=start_at,
        tick_s=tick,
        duration_s=duration,
        exit_at_end=exit_at_end,
        data_dir=data_dir,
        truth_path=truth,
        opcua_policies=policies,
        opcua_users=users,
        faults=commands,
        wall_timestamps=wall_timestamps,
    )
    show_live = live and out.is_terminal
    display: Live | None = None

    def started(running: object) -> None:
        nonlocal display
        _print_banner(running)
        if show_live:
            display = Live(_machine_table(running), console=out, refresh_per_second=2)
            display.start()

    def ticked(running: object) -> None:
        if display is not None:
            display.update(_machine_table(running))

    try:
        asyncio.run(serve_until_stopped(loaded, options, started, ticked))
    except ScenarioError as exc:
        err.print(exc.report("invalid scenario"), highlight=False, markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    except OSError as exc:
        err.print(f"[red]cannot start:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        if display is not None:
            display.stop()
    out.print("simulator stopped")


def _parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        err.print(f"--start {text!r}: use ISO 8601 with an offset, e.g. 2026-11-28T06:00:00+01:00")
        raise typer.Exit(EXIT_CONFIG)
    return parsed


def _print_banner(running: object) -> None:
    from simulators.model.truth import format_ts
    from simulators.serve import RunningSimulator

    assert isinstance(running, RunningSimulator)
    sim = running.sim
    out.print(
        f"[bold]plc-sim[/] scenario [cyan]{sim.scenario.scenario}[/] seed {sim.seed} "
        f"speed {sim.speed:g}x, simulated start {format_ts(sim.start)}"
    )
    for face in running.faces:
        for endpoint in face.endpoints():
            out.print(f"  {face.name.value:7} {endpoint}", highlight=False)
    if running.control_url:
        out.print(
            f"  control {running.control_url}  (plc-sim fault --control {running.control_url} ...)",
            highlight=False,
        )
    out.print(f"  truth   {running.truth_path}", highlight=False)
    out.print(f"  tags    plc-sim tags {sim.scenario.scenario}", highlight=False)


def _machine_table(running: object) -> Table:
    from simulators.model.truth import format_ts
    from simulators.serve import RunningSimulator

    assert isinstance(running, RunningSimulator)
    sim = running.sim
    table = Table(title=f"simulated {format_ts(sim.clock.now())}", title_justify="left")
    for column in ("machine", "state", "reason", "order", "product", "total", "good", "scrap"):
        table.add_column(column)
    for name, model in list(sim.machines.items())[:30]:
        table.add_row(
            name,
            model.state.value,
            str(model.reason),
            model.order,
            model.product,
            str(model.counters.total),
            str(model.counters.good),
            str(model.counters.scrap),
        )
    if len(sim.machines) > 30:
        table.caption = f"... and {len(sim.machines) - 30} more machines"
    return table


# -- faults at run time --------------------------------------------------------------------

ControlOption = Annotated[
    str, typer.Option("--control", help="Control endpoint URL", envvar="PLC_SIM_CONTROL")
]
DEFAULT_CONTROL = "http://127.0.0.1:8470"


def _send(control: str, spec: str) -> None:
    try:
        command = parse_fault_spec(spec)
    except FaultError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    from simulators.faults.commands import FAULT_ADAPTER

    body = FAULT_ADAPTER.dump_python(command, mode="json")
    try:
        response = httpx.post(f"{control.rstrip('/')}/faults", json=body, timeout=30)
    except httpx.HTTPError as exc:
        err.print(f"cannot reach the simulator at {control}: {exc}", markup=False)
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        err.print(
            f"refused ({response.status_code}): {response.json().get('detail')}", markup=False
        )
        raise typer.Exit(EXIT_CONFIG if response.status_code in (404, 422) else 1)
    out.print_json(response.text)


def _face(face: str) -> str:
    return f" on {face}" if face != "all" else ""


FaceOption = Annotated[str, typer.Option(help="opcua, modbus or all")]


@fault_app.command("drop")
def fault_drop(face: FaceOption = "all", control: ControlOption = DEFAULT_CONTROL) -> None:
    """Close every client connection."""
    _send(control, f"drop{_face(face)}")


@fault_app.command("hang")
def fault_hang(
    duration: Annotated[str, typer.Argument(help="e.g. 10s")],
    face: FaceOption = "all",
    control: ControlOption = DEFAULT_CONTROL,
) -> None:
    """Stop answering requests for DURATION (connections stay open)."""
    _send(control, f"hang {duration}{_face(face)}")


@fault_app.command("slow")
def fault_slow(
    delay: Annotated[str, typer.Argument(help="Added per response, e.g. 200ms")],
    for_: Annotated[str | None, typer.Option("--for", help="How long")] = None,
    face: FaceOption = "all",
    control: ControlOption = DEFAULT_CONTROL,
) -> None:
    """Delay every response."""
    _send(control, f"slow {delay}" + (f" for {for_}" if for_ else "") + _face(face))


@fault_app.command("restart")
def fault_restart(
    shift_namespace: Annotated[
        bool, typer.Option(help="OPC UA: register an extra namespace so our index changes")
    ] = False,
    downtime: Annotated[str, typer.Option(help="Time down, e.g. 5s")] = "0",
    face: FaceOption = "all",
    control: ControlOption = DEFAULT_CONTROL,
) -> None:
    """Restart the server(s): sessions and connections are lost."""
    spec = f"restart downtime {downtime}" + (" shift-namespace" if shift_namespace else "")
    _send(control, spec + _face(face))


@fault_app.command("bad-status")
def fault_bad_status(
    machine: str,
    tag: str,
    status: Annotated[str, typer.Option(help="OPC UA status")] = "BadSensorFailure",
    exception: Annotated[int, typer.Option(help="Modbus exception code")] = 4,
    for_: Annotated[str | None, typer.Option("--for", help="How long")] = None,
    control: ControlOption = DEFAULT_CONTROL,
) -> None:
    """Serve a bad status (OPC UA) / exception code (Modbus) for one tag."""
    spec = f"bad-status {machine} {tag} status {status} exception {exception}"
    _send(control, spec + (f" for {for_}" if for_ else ""))


@fault_app.command("counter-reset")
def fault_counter_reset(machine: str, control: ControlOption = DEFAULT_CONTROL) -> None:
    """Reset a machine's counters to 0 (as a PLC power cycle would)."""
    _send(control, f"counter-reset {machine}")


@fault_app.command("clear")
def fault_clear(face: FaceOption = "all", control: ControlOption = DEFAULT_CONTROL) -> None:
    """Clear hang, slow and bad-status faults."""
    _send(control, f"clear{_face(face)}")


@fault_app.command("status")
def fault_status(control: ControlOption = DEFAULT_CONTROL) -> None:
    """Show the simulator's state and active faults."""
    try:
        response = httpx.get(f"{control.rstrip('/')}/status", timeout=10)
    except httpx.HTTPError as exc:
        err.print(f"cannot reach the simulator at {control}: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print_json(response.text)


if __name__ == "__main__":
    app()
