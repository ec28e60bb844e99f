"""``oee-collector``: the central collector (MQTT -> PostgreSQL) and its tools.

Every command that needs the database finds it in this order: ``--dsn``, the
``LINESIDE_DATABASE_URL`` environment variable, ``database.url`` in the config file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from collector.cli_common import (
    EXIT_CONFIG,
    EXIT_DATABASE,
    ConfigArg,
    DsnOption,
    connect_or_exit,
    database_url_or_exit,
    first_line,
    load_or_exit,
    setup_logging,
)
from collector.config import DATABASE_URL_ENV, CollectorConfig
from collector.dead_letters_cli import app as dead_letters_app
from collector.oee_cli import oee_command
from collector.partitions_cli import app as partitions_app
from collector.token_cli import app as token_app
from lineside_common.cli_parts import config_schema_text, write_or_print
from lineside_common.yamlconfig import ConfigFileError

app = typer.Typer(
    help="Lineside collector: MQTT events -> PostgreSQL, OEE.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.command()
def run(
    config: ConfigArg = None,
    dsn: DsnOption = None,
    client_id: Annotated[
        str | None,
        typer.Option(help="MQTT client id of this process (several processes on one host)"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Ingest: subscribe to every agent's events, store them, confirm them (Ctrl-C stops)."""
    from collector.service.app import CollectorService  # deferred: heavier imports
    from lineside_common.health_http import HealthEndpointError

    setup_logging(log_level)
    loaded = load_or_exit(config)
    url = database_url_or_exit(loaded, dsn)
    try:
        service = CollectorService(loaded, url, client_id=client_id)
        code = service.run()
    except ConfigFileError as exc:
        err.print(exc.report(str(loaded.masterdata_file)), highlight=False, markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    except (HealthEndpointError, ValueError) as exc:
        err.print(f"oee-collector: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command()
def migrate(config: ConfigArg = None, dsn: DsnOption = None) -> None:
    """Apply pending schema migrations (idempotent; recorded in ops.schema_migrations)."""
    from collector.store import apply_migrations

    with connect_or_exit(load_or_exit(config), dsn) as conn:
        try:
            applied = apply_migrations(conn)
        except Exception as exc:  # psycopg or a MigrationError: both name the problem
            err.print(f"oee-collector migrate: {first_line(exc)}", highlight=False, markup=False)
            raise typer.Exit(EXIT_DATABASE) from None
    if applied:
        for name in applied:
            out.print(f"applied {name}", highlight=False)
    else:
        out.print("schema is up to date", highlight=False)


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="Collector YAML file")]) -> None:
    """Validate a configuration file; print every problem with file:line:column."""
    loaded = load_or_exit(config)
    out.print(f"{config}: ok", highlight=False)
    out.print(
        f"  broker   {loaded.mqtt.broker} as {loaded.mqtt.resolved_client_id()}, group "
        f"{loaded.mqtt.group}",
        highlight=False,
    )
    source = "database.url" if loaded.database.url else f"--dsn or ${DATABASE_URL_ENV}"
    out.print(f"  database from {source}", highlight=False)
    if loaded.masterdata_file is not None:
        from collector.masterdata import load_masterdata

        try:
            masterdata = load_masterdata(loaded.masterdata_file)
        except ConfigFileError as exc:
            err.print(exc.report(str(loaded.masterdata_file)), highlight=False, markup=False)
            raise typer.Exit(EXIT_CONFIG) from None
        out.print(
            f"  masterdata {loaded.masterdata_file}: {len(masterdata.calendars)} calendar(s), "
            f"{len(masterdata.products)} product(s)",
            highlight=False,
        )
    api = loaded.api
    if api.auth is not None:
        out.print(
            f"  api      {api.listen} ({api.auth.algorithm}, cache {api.cache.backend}, "
            f"{'with ingest' if api.serve_with_ingest else 'oee-collector serve'})",
            highlight=False,
        )


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file")] = None,
    masterdata: Annotated[
        bool, typer.Option("--masterdata", help="The master data file's schema instead")
    ] = False,
) -> None:
    """Print the JSON Schema of the configuration file (for editor autocompletion)."""
    if masterdata:
        from collector.masterdata import masterdata_schema_json

        text = masterdata_schema_json()
    else:
        text = config_schema_text(CollectorConfig, "Lineside collector configuration")
    if write_or_print(text, output):
        out.print(f"wrote {output}")


@app.command()
def serve(
    config: ConfigArg = None,
    dsn: DsnOption = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Serve the HTTP API (api.listen; OpenAPI at /docs); Ctrl-C stops."""
    from collector.api.app import ApiConfigError  # deferred: heavier imports
    from collector.api.server import serve as serve_api

    setup_logging(log_level)
    loaded = load_or_exit(config)
    url = database_url_or_exit(loaded, dsn)
    try:
        serve_api(loaded, config, url)
    except (ApiConfigError, ValueError) as exc:
        err.print(f"oee-collector serve: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None


app.command("oee")(oee_command)
app.add_typer(partitions_app, name="partitions")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(token_app, name="token")

if __name__ == "__main__":
    app()
