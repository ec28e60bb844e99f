"""``edge-agent``: the line PC's agent. Commands arrive as they work."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edge_agent.config import AgentConfig, load_config
from lineside_common.yamlconfig import ConfigFileError

app = typer.Typer(
    help="Lineside edge agent: PLC tags -> production events.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
EXIT_CONFIG = 2


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file")] = None,
) -> None:
    """Print the JSON Schema of the configuration file (for editor autocompletion)."""
    document = AgentConfig.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "Lineside edge agent configuration"
    text = json.dumps(document, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        out.print(f"wrote {output}")
    else:
        sys.stdout.write(text + "\n")


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="Agent YAML file")]) -> None:
    """Validate a configuration file; print every problem with file:line:column."""
    try:
        loaded = load_config(config)
    except ConfigFileError as exc:
        err.print(f"[bold red]{config}: {len(exc.issues)} problem(s)[/]", highlight=False)
        for issue in exc.issues:
            err.print(f"  {issue.render()}", highlight=False, markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
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


if __name__ == "__main__":
    app()
