"""``edge-agent buffer``: look into and maintain a buffer file (stats, peek, replay, purge).

``stats``, ``peek`` and ``replay`` only read (safe while the agent runs). ``purge``
deletes events and so takes the buffer's lock: it refuses while the agent runs.

``replay`` exports instead of re-queueing: everything still in the buffer is sent
again anyway after each agent start (the forwarder keeps its in-flight state in
memory), and events the collector confirmed are deleted, so they cannot be replayed
from here. ``replay --to FILE.jsonl`` writes the buffered events, marked
``"historical": true``, for a manual re-import.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edge_agent.buffer import _store
from edge_agent.buffer.errors import BufferLockedError

app = typer.Typer(
    help="Inspect and maintain the agent's store-and-forward buffer (SQLite).",
    no_args_is_help=True,
)
out = Console(soft_wrap=True)  # long paths stay on one line (grep, logs)
err = Console(stderr=True, soft_wrap=True)

BufferPath = Annotated[
    Path,
    typer.Argument(metavar="FILE_OR_CONFIG", help="The buffer file, e.g. <data_dir>/buffer.db"),
]
Equipment = Annotated[str | None, typer.Option("--equipment", "-e", help="Only this equipment")]
CHUNK = 10_000


def resolve_buffer_path(path: Path) -> Path:
    """The buffer file ``path`` names (a config file mode can map an agent.yaml here)."""
    if not path.is_file():
        err.print(f"[red]buffer {path}: no such file[/red]")
        raise typer.Exit(2)
    return path


def _open_read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        if conn.execute("PRAGMA application_id").fetchone()[0] != _store.APPLICATION_ID:
            raise sqlite3.DatabaseError("not a Lineside buffer (application_id differs)")
    except sqlite3.DatabaseError as error:
        conn.close()
        err.print(f"[red]buffer {path}: cannot read it: {error}[/red]")
        raise typer.Exit(1) from None
    return conn


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


@app.command()
def stats(
    path: BufferPath,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
) -> None:
    """Events, bytes, age and drop counters, in total and per equipment."""
    path = resolve_buffer_path(path)
    with contextlib.closing(_open_read_only(path)) as conn, err.status("scanning the buffer"):
        per_equipment: dict[str, dict[str, Any]] = {}
        for equipment, events, size, first, last in conn.execute(
            "SELECT equipment, count(*), sum(size), min(seq), max(seq) FROM events "
            "GROUP BY equipment"
        ):
            per_equipment[equipment] = _entry(events, size, first, last)
        for equipment, next_seq in conn.execute("SELECT equipment, next_seq FROM sequences"):
            per_equipment.setdefault(equipment, _entry())["next_seq"] = next_seq
        for equipment, reason, count in conn.execute(
            "SELECT equipment, reason, events FROM dropped"
        ):
            per_equipment.setdefault(equipment, _entry())["dropped"][reason] = count
        oldest, newest = conn.execute(
            "SELECT (SELECT captured_ms FROM events ORDER BY rowid LIMIT 1), "
            "(SELECT captured_ms FROM events ORDER BY rowid DESC LIMIT 1)"
        ).fetchone()
    wal = Path(f"{path}-wal")
    summary: dict[str, Any] = {
        "path": str(path),
        "file_bytes": path.stat().st_size,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        "events": sum(e["events"] for e in per_equipment.values()),
        "bytes": sum(e["bytes"] for e in per_equipment.values()),
        "oldest_captured": _iso(oldest),
        "newest_captured": _iso(newest),
        "equipment": per_equipment,
    }
    if as_json:
        out.print_json(orjson.dumps(summary).decode())
        return
    out.print(
        f"[bold]{path}[/bold]: {summary['events']:,} events, {summary['bytes']:,} bytes "
        f"(file {summary['file_bytes']:,} + WAL {summary['wal_bytes']:,} bytes)\n"
        f"oldest captured {summary['oldest_captured']}, newest {summary['newest_captured']}"
    )
    table = Table("equipment", "events", "bytes", "first seq", "last seq", "next seq", "dropped")
    for equipment, entry in sorted(per_equipment.items()):
        dropped = ", ".join(f"{n:,} ({reason})" for reason, n in sorted(entry["dropped"].items()))
        table.add_row(
            equipment,
            f"{entry['events']:,}",
            f"{entry['bytes']:,}",
            *(str(entry[key]) if entry[key] is not None else "-" for key in _SEQ_KEYS),
            dropped or "0",
        )
    out.print(table)


_SEQ_KEYS = ("first_seq", "last_seq", "next_seq")


def _entry(
    events: int = 0, size: int = 0, first_seq: int | None = None, last_seq: int | None = None
) -> dict[str, Any]:
    return {
        "events": events,
        "bytes": size,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "next_seq": None,
        "dropped": {},
    }


@app.command()
def peek(
    path: BufferPath,
    equipment: Equipment = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many events")] = 10,
    newest: Annotated[bool, typer.Option("--newest", help="The newest instead of oldest")] = False,
) -> None:
    """Print buffered events as JSON lines: {"rowid", "captured_at", "event"}."""
    path = resolve_buffer_path(path)
    where, params = ("WHERE equipment = ?", [equipment]) if equipment else ("", [])
    order = "DESC" if newest else "ASC"
    with contextlib.closing(_open_read_only(path)) as conn:
        rows = conn.execute(
            f"SELECT rowid, captured_ms, body FROM events {where} ORDER BY rowid {order} LIMIT ?",
            [*params, limit],
        ).fetchall()
    for rowid, captured_ms, body in rows:
        line = b'{"rowid":%d,"captured_at":"%s","event":%s}' % (
            rowid,
            _iso(captured_ms).encode(),
            body,
        )
        typer.echo(line.decode())


@app.command()
def replay(
    path: BufferPath,
    to: Annotated[
        Path | None, typer.Option("--to", help="Write the events to this JSON lines file")
    ] = None,
    equipment: Equipment = None,
) -> None:
    """Export buffered events for a manual re-import (the agent resends them by itself)."""
    path = resolve_buffer_path(path)
    if to is None:
        out.print(
            "Nothing to do: every event in the buffer is sent again after each agent start,\n"
            "and events the collector confirmed are deleted, so they cannot be replayed from\n"
            "here. Use --to FILE.jsonl to export the buffered events (marked historical) for\n"
            "a manual re-import."
        )
        return
    where, params = ("AND equipment = ?", [equipment]) if equipment else ("", [])
    with contextlib.closing(_open_read_only(path)) as conn:
        total = conn.execute(f"SELECT count(*) FROM events WHERE 1 {where}", params).fetchone()[0]
        written = 0
        with to.open("wb") as sink, _progress() as progress:
            task = progress.add_task("exporting", total=total)
            for bodies in _chunks(conn, f"AND 1 {where}", params, "body"):
                # the same bytes the forwarder sends for a replayed event
                sink.writelines(b'{"historical":true,' + body[1:] + b"\n" for body in bodies)
                written += len(bodies)
                progress.advance(task, len(bodies))
    out.print(f"wrote {written:,} events to {to}")


def _chunks(
    conn: sqlite3.Connection, condition: str, params: list[Any], column: str
) -> Iterator[list[Any]]:
    """``column`` of the events matching ``condition``, in rowid order, CHUNK at a time."""
    after = 0
    while True:
        rows = conn.execute(
            f"SELECT rowid, {column} FROM events WHERE rowid > ? {condition} "
            "ORDER BY rowid LIMIT ?",
            [after, *params, CHUNK],
        ).fetchall()
        if not rows:
            return
        after = rows[-1][0]
        yield [value for _, value in rows]


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration_s(text: str) -> float:
    """``"90"``, ``"90s"``, ``"15m"``, ``"2h"``, ``"7d"`` -> seconds."""
    match = DURATION.match(text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration; use e.g. 90s, 15m, 2h or 7d")
    return float(match.group(1)) * UNIT_S[match.group(2)]


@app.command()
def purge(
    path: BufferPath,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete (required)")] = False,
    equipment: Equipment = None,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Only events captured longer ago, e.g. 2h or 7d"),
    ] = None,
) -> None:
    """Delete buffered events for good (all, or by equipment and age). Stop the agent first.

    Sequence numbers are kept, so the collector sees the purged events as a gap.
    """
    path = resolve_buffer_path(path)
    conditions, params = [], []
    if equipment:
        conditions.append("equipment = ?")
        params.append(equipment)
    if older_than is not None:
        cutoff_ms = int((time.time() - parse_duration_s(older_than)) * 1000)
        conditions.append("captured_ms < ?")
        params.append(cutoff_ms)
    condition = "".join(f" AND {c}" for c in conditions)
    lock = _store.FileLock(path)
    try:
        lock.acquire("edge-agent buffer purge")
    except BufferLockedError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    try:
        with contextlib.closing(_open_read_only(path)) as reader:
            total = reader.execute(
                f"SELECT count(*) FROM events WHERE 1 {condition}", params
            ).fetchone()[0]
        if not yes:
            err.print(
                f"would delete {total:,} events from {path}; nothing deleted. "
                "Add --yes to delete them."
            )
            raise typer.Exit(1)
        deleted = _delete_matching(path, condition, params, total)
    finally:
        lock.release()
    out.print(f"deleted {deleted:,} events from {path}")


def _delete_matching(path: Path, condition: str, params: list[Any], total: int) -> int:
    conn = _store.connect(path)
    deleted = 0
    with contextlib.closing(conn), _progress() as progress:
        task = progress.add_task("purging", total=total)
        while True:
            # one short transaction per chunk: the file stays usable if this is interrupted
            conn.execute("BEGIN IMMEDIATE")
            count = len(
                conn.execute(
                    "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE 1 "
                    f"{condition} ORDER BY rowid LIMIT ?) RETURNING rowid",
                    [*params, CHUNK],
                ).fetchall()
            )
            conn.execute("COMMIT")
            deleted += count
            progress.advance(task, count)
            if count < CHUNK:
                return deleted
