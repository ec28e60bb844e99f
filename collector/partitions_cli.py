"""``oee-collector partitions list|create|drop``: day partitions of the event store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from collector.cli_common import ConfigArg, DsnOption, connect_or_exit, load_or_exit

app = typer.Typer(help="Day partitions of audit.events and the fact tables.", no_args_is_help=True)
out = Console(soft_wrap=True)


@app.command("list")
def list_(config: ConfigArg = None, dsn: DsnOption = None) -> None:
    """Every partition with its day, estimated rows and size, oldest first."""
    from collector.store import list_partitions

    with connect_or_exit(load_or_exit(config), dsn) as conn:
        partitions = list_partitions(conn)
    table = Table("table", "partition", "from (UTC)", "to (UTC)", "rows (est.)", "size")
    for part in partitions:
        table.add_row(
            part.parent,
            part.name.split(".", 1)[-1],
            part.lower.isoformat(timespec="minutes") if part.lower else "-",
            part.upper.isoformat(timespec="minutes") if part.upper else "-",
            f"{part.row_estimate:,}",
            _size(part.total_bytes),
        )
    out.print(table)


@app.command()
def create(
    config: ConfigArg = None,
    dsn: DsnOption = None,
    ahead_days: Annotated[int | None, typer.Option(help="Days ahead (default: config)")] = None,
    back_days: Annotated[int, typer.Option(help="Days back from today")] = 1,
) -> None:
    """Create the missing partitions from today - back_days to today + ahead_days."""
    from collector.store import ensure_partitions

    loaded = load_or_exit(config)
    ahead = loaded.partitions.ahead_days if ahead_days is None else ahead_days
    with connect_or_exit(loaded, dsn) as conn:
        created = ensure_partitions(conn, back_days=back_days, ahead_days=ahead)
    for name in created:
        out.print(f"created {name}", highlight=False)
    if not created:
        out.print("every partition exists already", highlight=False)


@app.command()
def drop(
    config: ConfigArg = None,
    dsn: DsnOption = None,
    older_than_days: Annotated[
        int | None,
        typer.Option(help="Retention in days (default: partitions.retention_days)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only show what would be dropped")] = False,
) -> None:
    """Drop day partitions entirely older than the retention (rows younger never go)."""
    from collector.store import drop_partitions_older_than

    loaded = load_or_exit(config)
    days = loaded.partitions.retention_days if older_than_days is None else older_than_days
    if days is None:
        out.print(
            "no retention: pass --older-than-days N or set partitions.retention_days",
            highlight=False,
        )
        raise typer.Exit(2)
    with connect_or_exit(loaded, dsn) as conn:
        dropped = drop_partitions_older_than(conn, days, dry_run=dry_run)
    verb = "would drop" if dry_run else "dropped"
    for part in dropped:
        out.print(
            f"{verb} {part.name} ({part.row_estimate:,} rows, {_size(part.total_bytes)})",
            highlight=False,
        )
    if not dropped:
        out.print(f"nothing older than {days} days", highlight=False)


def _size(total_bytes: int) -> str:
    size = float(total_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"
