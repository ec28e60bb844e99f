"""``edge-agent``: the line PC's agent. Commands arrive as they work."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edge_agent.buffer.cli import app as buffer_app
from edge_agent.buffer.errors import EventBufferError
from edge_agent.config import AgentConfig, load_config
from edge_agent.service.errors import HealthServerError
from edge_agent.service.status_cli import status as agent_status
from lineside_common.cli_parts import (
    config_schema_text,
    configure_logging,
    log_level_or_none,
    write_or_print,
)
from lineside_common.yamlconfig import ConfigFileError

app = typer.Typer(
    help="Lineside edge agent: PLC tags -> production events.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
EXIT_CONFIG = 2
PASSWORD_ENV = "LINESIDE_OPCUA_PASSWORD"


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file")] = None,
) -> None:
    """Print the JSON Schema of the configuration file (for editor autocompletion)."""
    if write_or_print(config_schema_text(AgentConfig, "Lineside edge agent configuration"), output):
        out.print(f"wrote {output}")


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="Agent YAML file")]) -> None:
    """Validate a configuration file; print every problem with file:line:column."""
    loaded = _load_or_exit(config)
    roles = Counter(tag.role.value for eq in loaded.equipment for tag in eq.tags)
    out.print(f"{config}: ok", highlight=False)
    location = "/".join(loaded.agent.location.model_dump().values())
    out.print(f"  agent      {loaded.agent.id} at {location}", highlight=False)
    for conn in loaded.connections:
        target = (
            conn.opcua.endpoint
            if conn.opcua
            else (
                f"modbus tcp {conn.modbus.tcp.host}:{conn.modbus.tcp.port}"
                if conn.modbus.tcp
                else f"modbus rtu {conn.modbus.rtu.port}"
            )
        )
        out.print(f"  connection {conn.id}: {target}", highlight=False)
    out.print(
        f"  equipment  {len(loaded.equipment)}, tags "
        f"{sum(roles.values())} ({', '.join(f'{k} {v}' for k, v in sorted(roles.items()))})",
        highlight=False,
    )


@app.command()
def read(
    config: Annotated[Path, typer.Argument(help="Agent YAML file")],
    tag: Annotated[str, typer.Argument(help="equipment.tag, e.g. press-1.state")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer")] = 10.0,
) -> None:
    """Read one tag once; print its value, quality and timestamps."""
    import asyncio  # deferred with the sources: only this command needs them

    from edge_agent.read_once import read_once

    _quiet_libraries()
    loaded = _load_or_exit(config)
    try:
        result = asyncio.run(read_once(loaded, tag, timeout))
    except KeyError as exc:
        known = exc.args[1] if len(exc.args) > 1 else []
        err.print(f"no tag {tag!r} in {config}; tags: {', '.join(known)}", markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    sample = result.sample
    if sample is None:
        err.print(f"{tag}: no value ({result.connection_problem})", markup=False)
        raise typer.Exit(1)
    table = Table(show_header=False, box=None)
    for name, value in (
        ("tag", sample.tag),
        ("value", repr(sample.value)),
        ("quality", sample.quality.value),
        ("status", sample.status),
        ("source time", _ts(sample.source_ts)),
        ("server time", _ts(sample.server_ts)),
        ("received", _ts(sample.received_ts)),
    ):
        table.add_row(name, value)
    out.print(table)
    if sample.quality.value != "good":
        raise typer.Exit(1)


@app.command()
def discover(
    endpoint: Annotated[str, typer.Argument(help="opc.tcp://host:port[/path]")],
    depth: Annotated[int, typer.Option(help="How deep to browse below Objects")] = 6,
    filter_: Annotated[
        str | None, typer.Option("--filter", help="Glob on the browse path, e.g. '*press-1*'")
    ] = None,
    policy: Annotated[
        str, typer.Option(help="None, Basic256Sha256, Aes256_Sha256_RsaPss")
    ] = "None",
    mode: Annotated[str, typer.Option(help="None, Sign, SignAndEncrypt")] = "None",
    username: Annotated[
        str | None, typer.Option(help=f"Log in as this user; password from ${PASSWORD_ENV}")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Where the client certificate lives")] = Path(
        "var/agent"
    ),
) -> None:
    """Browse an OPC UA server and print a ready-to-edit agent configuration."""
    import asyncio
    import os

    from edge_agent.config.models import Connection
    from edge_agent.sources.opcua import OpcUaSourceError, discover, render_equipment_yaml

    _quiet_libraries()
    opcua: dict[str, object] = {"endpoint": endpoint, "security": {"policy": policy, "mode": mode}}
    if username:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            err.print(f"--username needs the password in ${PASSWORD_ENV}")
            raise typer.Exit(EXIT_CONFIG)
        opcua["auth"] = {"type": "username", "username": username, "password": password}
    try:
        connection = Connection.model_validate({"id": "plc", "opcua": opcua})
    except ValueError as exc:
        err.print(f"invalid options: {exc}", markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    try:
        found = asyncio.run(
            discover(connection, "discover", data_dir, depth=depth, pattern=filter_)
        )
    except (OpcUaSourceError, OSError, TimeoutError) as exc:
        err.print(f"cannot browse {endpoint}: {exc}", markup=False)
        raise typer.Exit(1) from None
    if not found:
        err.print(f"no variables found on {endpoint} (depth {depth}, filter {filter_!r})")
        raise typer.Exit(1)
    body = render_equipment_yaml(found, "plc")
    sys.stdout.write(
        f"# Discovered on {endpoint}: {len(found)} variables. Check the guessed roles, set\n"
        "# the agent id and location, then: edge-agent check-config FILE\n"
        "agent:\n  id: CHANGE-ME\n"
        "  location: {enterprise: CHANGE-ME, site: CHANGE-ME, area: CHANGE-ME, line: CHANGE-ME}\n"
        f"connections:\n  - id: plc\n    opcua:\n      endpoint: {endpoint}\n"
        f"      security: {{policy: {policy}, mode: {mode}}}\n"
        + (
            f"      auth: {{type: username, username: {username}, "
            f'password: "${{{PASSWORD_ENV}}}"}}\n'
            if username
            else ""
        )
        + "equipment:\n"
        + "".join(f"  {line}\n" for line in body.splitlines())
    )


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Agent YAML file, e.g. /etc/lineside/agent.yaml")],
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error", case_sensitive=False)
    ] = "info",
) -> None:
    """Run the agent: read the PLCs, buffer every event, forward to the broker.

    SIGTERM or Ctrl-C stops it cleanly; SIGHUP reloads the configuration (a file with
    problems is rejected and logged, and the running configuration stays).
    """

    from edge_agent.runner import run_agent  # deferred: the full agent stack is heavy

    level = log_level_or_none(log_level)
    if level is None:
        err.print(f"--log-level: unknown level {log_level!r}; use debug, info, warning or error")
        raise typer.Exit(EXIT_CONFIG)
    configure_logging(level, quiet=("pymodbus", "asyncua"))
    try:
        run_agent(config)
    except ConfigFileError as exc:
        err.print(exc.report(str(config)), highlight=False, markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    except EventBufferError as exc:
        err.print(f"edge-agent: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    except HealthServerError as exc:
        err.print(f"edge-agent: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None


@app.command()
def doctor(
    config: Annotated[Path, typer.Argument(help="Agent YAML file, e.g. /etc/lineside/agent.yaml")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the checks as JSON")] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds allowed for each step of a check", min=0.5, max=60)
    ] = 5.0,
) -> None:
    """Check the configuration, PLCs, broker, buffer disk and clock; say what to fix.

    Exit code 0 when every check is ok or only warns, 1 when any check failed, 2 when
    the configuration is invalid (its problems are listed with file:line:column).
    As the service's user (sudo -u lineside) it sees the agent's file permissions; see
    docs/install-line-pc.md (section 10) for credentials that only root can read.
    """
    import asyncio
    import json

    from edge_agent.doctor import counts, run_doctor

    _quiet_libraries()
    report = asyncio.run(run_doctor(config, timeout))
    if json_output:
        document = {
            "config": str(config),
            "exit_code": report.exit_code,
            "summary": counts(report.checks),
            "checks": [check.as_dict() for check in report.checks],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        raise typer.Exit(report.exit_code)
    outcome = report.config_outcome
    if not report.config_valid and outcome is not None and outcome.issues:
        lines = [f"{config}: {len(outcome.issues)} problem(s)"]
        lines += [f"  {issue.render()}" for issue in outcome.issues]
        err.print("\n".join(lines), highlight=False, markup=False)
    table = Table(title=f"edge-agent doctor {config}", title_justify="left")
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in report.checks:
        table.add_row(
            Text(check.name),
            Text(check.status.value.upper(), style=_STATUS_STYLES[check.status.value]),
            Text(check.detail),
            Text(check.fix),
        )
    out.print(table)
    summary = counts(report.checks)
    out.print(
        f"{summary['ok']} ok, {summary['warn']} warn, {summary['fail']} fail "
        f"(exit {report.exit_code})",
        highlight=False,
        markup=False,
    )
    raise typer.Exit(report.exit_code)


_STATUS_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def _quiet_libraries() -> None:
    """The result is printed; the protocol libraries' own retry chatter is noise here."""
    import logging

    configure_logging(logging.WARNING)
    for name in ("pymodbus", "asyncua", "lineside.agent"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _ts(value: object) -> str:
    return value.isoformat(timespec="milliseconds") if value is not None else "-"


def _load_or_exit(config: Path) -> AgentConfig:
    try:
        return load_config(config)
    except ConfigFileError as exc:
        err.print(exc.report(str(config)), highlight=False, markup=False)
        raise typer.Exit(EXIT_CONFIG) from None


app.add_typer(buffer_app, name="buffer")
app.command("status")(agent_status)

if __name__ == "__main__":
    app()
