"""What every ``oee-collector`` command shares: config and database lookup, logging."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console

from collector.config import (
    DATABASE_URL_ENV,
    CollectorConfig,
    load_collector_config,
    resolve_database_url,
)
from lineside_common.cli_parts import configure_logging, log_level_or_none
from lineside_common.yamlconfig import ConfigFileError

err = Console(stderr=True, soft_wrap=True)
EXIT_CONFIG = 2
EXIT_DATABASE = 3

ConfigArg = Annotated[
    Path | None, typer.Argument(help="Collector YAML file (omit for the built-in defaults)")
]
DsnOption = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        help=f"PostgreSQL URL or libpq string (else ${DATABASE_URL_ENV}, else database.url)",
        show_default=False,
    ),
]


def load_or_exit(config: Path | None) -> CollectorConfig:
    """The validated configuration, or exit 2 with every problem located."""
    try:
        return load_collector_config(config)
    except ConfigFileError as exc:
        err.print(exc.report(str(config)), highlight=False, markup=False)
        raise typer.Exit(EXIT_CONFIG) from None


def database_url_or_exit(config: CollectorConfig, dsn: str | None) -> str:
    """The database URL by the documented order, or exit 2 saying where to put one."""
    url = resolve_database_url(config, dsn)
    if not url:
        err.print(
            f"oee-collector: no database: pass --dsn, set {DATABASE_URL_ENV}, or set "
            "database.url in the config file",
            highlight=False,
        )
        raise typer.Exit(EXIT_CONFIG)
    return url


@contextmanager
def connect_or_exit(config: CollectorConfig, dsn: str | None) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the database, or exit 3 with libpq's reason."""
    url = database_url_or_exit(config, dsn)
    try:
        conn = psycopg.connect(
            url, autocommit=True, connect_timeout=max(1, round(config.database.connect_timeout_s))
        )
    except psycopg.Error as exc:
        err.print(f"oee-collector: cannot connect: {first_line(exc)}", highlight=False)
        raise typer.Exit(EXIT_DATABASE) from None
    with conn:
        yield conn


def setup_logging(level_name: str) -> None:
    """Structured key=value lines on stderr (journald adds its own timestamps)."""
    level = log_level_or_none(level_name)
    if level is None:
        err.print(f"--log-level: unknown level {level_name!r}; use debug, info, warning or error")
        raise typer.Exit(EXIT_CONFIG)
    configure_logging(level, quiet=("psycopg.pool",))


def first_line(error: BaseException) -> str:
    """The first line of an error's text (libpq messages run over several lines)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
