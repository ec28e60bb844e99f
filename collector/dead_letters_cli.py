"""``oee-collector dead-letters list|show|replay``: refused messages, kept with the reason.

``replay`` runs a stored message through today's validator again (after a collector
upgrade that knows a new event type, or a fixed clock) and stores what now passes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from collector.cli_common import DsnOption, connect_or_exit, load_or_exit

app = typer.Typer(help="Messages the collector refused, with the reason.", no_args_is_help=True)
out = Console(soft_wrap=True)

PREVIEW_BYTES = 2_000
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Collector YAML file")]


@app.command("list")
def list_(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason, e.g. invalid_event")] = None,
    replayed: Annotated[bool, typer.Option(help="Include replayed ones")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Most rows shown")] = 50,
) -> None:
    """The newest dead letters: id, time, reason, agent, topic and the problem."""
    from collector.store.dead_letters import list_dead_letters

    with connect_or_exit(load_or_exit(config), dsn) as conn:
        rows = list_dead_letters(conn, reason=reason, include_replayed=replayed, limit=limit)
    table = Table("id", "received (UTC)", "reason", "agent", "topic", "detail", "bytes")
    for row in rows:
        table.add_row(
            str(row.id),
            row.received_at.astimezone(UTC).isoformat(timespec="seconds"),
            row.reason + (" (replayed)" if row.replayed_at else ""),
            row.agent_id or "-",
            row.topic,
            row.detail[:120],
            f"{row.payload_bytes:,}",
        )
    out.print(table)
    if not rows:
        out.print("no dead letters", highlight=False)


@app.command()
def show(
    ids: Annotated[list[int], typer.Argument(help="Dead letter ids")],
    config: ConfigOption = None,
    dsn: DsnOption = None,
) -> None:
    """One dead letter in full: reason, detail and the start of the payload."""
    from collector.store.dead_letters import get_dead_letters

    with connect_or_exit(load_or_exit(config), dsn) as conn:
        rows = get_dead_letters(conn, ids)
    for row in rows:
        out.print(f"[bold]dead letter {row.id}[/bold]")
        out.print(f"  received  {row.received_at.isoformat()}", highlight=False)
        out.print(f"  topic     {row.topic}", highlight=False, markup=False)
        out.print(f"  reason    {row.reason}", highlight=False)
        out.print(f"  detail    {row.detail}", highlight=False, markup=False)
        out.print(
            f"  agent     {row.agent_id or '-'}  batch {row.batch_id or '-'}", highlight=False
        )
        kept = "" if row.complete else f" (first {len(row.payload):,} kept)"
        out.print(f"  payload   {row.payload_bytes:,} bytes{kept}:", highlight=False)
        out.print(
            row.payload[:PREVIEW_BYTES].decode("utf-8", "replace"), highlight=False, markup=False
        )
    missing = set(ids) - {row.id for row in rows}
    if missing:
        out.print(f"no dead letter with id {', '.join(map(str, sorted(missing)))}")
        raise typer.Exit(1)


@app.command()
def replay(
    ids: Annotated[list[int], typer.Argument(help="Dead letter ids to try again")],
    config: ConfigOption = None,
    dsn: DsnOption = None,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be stored")] = False,
) -> None:
    """Validate stored messages again and store those that pass now (idempotent)."""
    from collector.ingest.validate import validate_message
    from collector.records import AcceptedBatch
    from collector.store import write
    from collector.store.dead_letters import get_dead_letters, mark_replayed

    loaded = load_or_exit(config)
    with connect_or_exit(loaded, dsn) as conn:
        rows = get_dead_letters(conn, ids)
        stored = failed = 0
        for row in rows:
            if row.replayed_at is not None:
                out.print(f"{row.id}: replayed already at {row.replayed_at.isoformat()}")
                continue
            if not row.complete:
                out.print(
                    f"{row.id}: only {len(row.payload):,} of {row.payload_bytes:,} bytes kept"
                )
                failed += 1
                continue
            outcome = validate_message(
                row.topic,
                row.payload,
                datetime.now(UTC),
                max_future_s=loaded.ingest.max_future_s,
            )
            if not isinstance(outcome, AcceptedBatch):
                out.print(f"{row.id}: still refused: {outcome.reason}: {outcome.detail}")
                failed += 1
                continue
            if dry_run:
                out.print(f"{row.id}: would store {len(outcome.events)} events")
                continue
            result = write(conn, [outcome], [])
            mark_replayed(conn, [row.id])
            stored += 1
            out.print(
                f"{row.id}: stored {result.events_inserted} events "
                f"({result.duplicates_skipped} were stored already)"
            )
    missing = set(ids) - {row.id for row in rows}
    if missing:
        out.print(f"no dead letter with id {', '.join(map(str, sorted(missing)))}")
    if failed or missing:
        raise typer.Exit(1)
